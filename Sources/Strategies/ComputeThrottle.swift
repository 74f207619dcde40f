import Foundation

/// Makes this process compute as if on a slower device: after a piece of work, sleeps until its
/// wall time is the calling thread's CPU time divided by `speed` (a thread team splits work
/// evenly, so one thread's CPU time is the team's wall time without contention). Contention from
/// other processes already slows the work, so it only sleeps for what is missing. Network
/// threads of the same process do not count.
public struct ComputeThrottle: ComputeTiming {
    /// Relative speed in (0, 1]: 0.25 takes four times as long as the unthrottled work alone.
    public let speed: Double
    public init(speed: Double) {
        self.speed = speed
    }

    /// Runs `work`, then sleeps as needed; returns its value and the wall seconds, sleep included.
    public func run<T>(_ work: () throws -> T) async throws -> (T, seconds: Double) {
        let wall0 = DispatchTime.now().uptimeNanoseconds, cpu0 = threadCPUSeconds()
        let value = try work()
        let cpu = threadCPUSeconds() - cpu0
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - wall0) / 1e9
        if speed < 1 {
            let target = cpu / speed
            if target > elapsed { try await Task.sleep(nanoseconds: UInt64((target - elapsed) * 1e9)) }
        }
        return (value, Double(DispatchTime.now().uptimeNanoseconds - wall0) / 1e9)
    }
}

/// CPU seconds the calling thread has used.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Runs a piece of a worker's compute and says how many seconds it took: what time rounds and
/// the DDP balancer are built on. `ComputeThrottle` measures (and emulates slower devices); a
/// test can give each worker fixed times instead, so that time rounds replay exactly.
public protocol ComputeTiming: Sendable {
    /// Runs `work`; returns its value and the seconds it counts as.
    func run<T>(_ work: () throws -> T) async throws -> (T, seconds: Double)
}
