import Foundation
import Strategies
import XCTest

final class ComputeThrottleTests: XCTestCase {
    /// Busy work of a fixed CPU cost.
    func spin(_ n: Int) -> Double {
        var x = 0.0
        for i in 0..<n { x += Double(i % 7) * 1e-9 }
        return x
    }

    /// CPU seconds of the calling thread.
    func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// A quarter-speed throttle makes the work take four times its own CPU time, measured on the
    /// same run (comparing with a separate unthrottled run would also measure the machine's
    /// other load, which the throttle deliberately counts as part of the slowdown).
    func testQuarterSpeedTakesFourTimesTheWorksCPUTime() async throws {
        let n = 100_000_000
        let ((cpu, sum), wall) = try await ComputeThrottle(speed: 0.25).run { () -> (Double, Double) in
            let start = threadCPU()
            let sum = spin(n)
            return (threadCPU() - start, sum)
        }
        XCTAssertGreaterThan(sum, 0)
        XCTAssertGreaterThan(cpu, 0.01)
        XCTAssertGreaterThanOrEqual(wall, 4 * cpu * 0.99)
        XCTAssertLessThan(wall, 4 * cpu * 1.5)
        // Unthrottled, it adds nothing.
        let ((cpuFull, sumFull), wallFull) = try await ComputeThrottle(speed: 1).run { () -> (Double, Double) in
            let start = threadCPU()
            let sum = spin(n)
            return (threadCPU() - start, sum)
        }
        XCTAssertEqual(sumFull, sum)
        XCTAssertLessThan(wallFull, 2 * cpuFull + 0.05)
    }
}
