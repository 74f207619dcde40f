import Foundation
import ModelCore

/// One disturbance of a chaos run, in seconds from the run's start.
public struct ChaosEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// SIGKILL a worker; it is started again (same name) after the plan's restart delay.
        case kill
        /// SIGSTOP a worker, SIGCONT after the plan's freeze time.
        case freeze
        /// SIGKILL the coordinator; it is started again with the same command line.
        case coordinator
    }

    public var at: Double
    public var kind: Kind
    /// The worker's index; nil for the coordinator.
    public var worker: Int?

    public init(at: Double, kind: Kind, worker: Int?) {
        (self.at, self.kind, self.worker) = (at, kind, worker)
    }
}

/// When a chaos run fails what: failures at exponential intervals (a Poisson process of
/// `perMinute` over `seconds`, as torchft's chaos test), each killing or freezing a random
/// worker with equal odds, and the coordinator killed once, at the first failure past the middle.
/// The same seed gives the same plan.
public struct ChaosPlan: Codable, Sendable, Equatable {
    public var seconds: Double
    public var perMinute: Double
    /// Seconds a killed worker stays down, and a frozen one stopped.
    public var restartSeconds = 5.0
    public var freezeSeconds = 20.0
    /// Seconds the coordinator stays down.
    public var coordinatorSeconds = 3.0
    public var events: [ChaosEvent]

    public init(seed: UInt64, workers: Int, seconds: Double, perMinute: Double) {
        self.seconds = seconds
        self.perMinute = perMinute
        var random = SeededGenerator(seed: seed)
        var events: [ChaosEvent] = []
        var t = 0.0
        var coordinatorKilled = false
        while perMinute > 0 {
            // Exponential gaps: -ln(U)/rate, U in (0, 1].
            let unit = Double((random.next() >> 11) + 1) / Double(1 << 53)
            t += -log(unit) * 60 / perMinute
            guard t < seconds else { break }
            if !coordinatorKilled, t >= seconds / 2 {
                coordinatorKilled = true
                events.append(ChaosEvent(at: t, kind: .coordinator, worker: nil))
                continue
            }
            let kind: ChaosEvent.Kind = random.next() % 2 == 0 ? .kill : .freeze
            events.append(ChaosEvent(at: t, kind: kind, worker: Int(random.next() % UInt64(max(workers, 1)))))
        }
        self.events = events
    }

    /// Seconds after `event` until its target is back (restarted, resumed).
    public func downtime(of event: ChaosEvent) -> Double {
        switch event.kind {
        case .kill: restartSeconds
        case .freeze: freezeSeconds
        case .coordinator: coordinatorSeconds
        }
    }
}
