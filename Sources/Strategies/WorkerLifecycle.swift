import Collectives

/// A worker's life in a run as a value-type state machine: the driver (`WorkerSession`) feeds it
/// what happened and performs the action it returns. Time comes in with the events (`now`), so
/// a test replays a whole life — a ring that does not fill, a loss, a join, a peer that keeps
/// failing — without sockets or sleeps.
///
///     start ─▶ poll ─(ready)─▶ form ─(formed)─▶ train ─(finished)─▶ leave
///               ▲  └(deadline)─▶ give up │           │
///               └──(failed, retry)──────┘           │
///               └──(peer lost / worker joined: newer epoch, resume)┘
public struct WorkerLifecycle<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// Limits and pauses; the defaults are what a worker process uses.
    public struct Policy: Sendable, Equatable {
        /// Times a worker forms its ring again after a failure (a failed form or a lost peer; joins
        /// do not count) before it gives up.
        public var maxReforms = 16
        /// How long to wait for the ring to fill (and, forming it, for every peer to dial).
        public var patience: Duration = .seconds(600)
        /// Forming after a loss: a peer still busy with an older ring is retried with the
        /// newest view instead of waited for.
        public var reformPatience: Duration = .seconds(10)
        /// Forming as a newcomer to a ring that trains.
        public var joinPatience: Duration = .seconds(30)
        /// Between two looks at the coordinator's ring view.
        public var pollInterval: Duration = .milliseconds(200)
        /// Before trying again after a failed form.
        public var retryDelay: Duration = .milliseconds(500)

        public init() {}
    }

    /// What the coordinator's ring view says, as far as this worker's life goes.
    public struct RingSighting: Sendable, Equatable {
        public var epoch: Int
        /// Every expected worker is in and the ring can form.
        public var ready: Bool
        public var members: Int
        public var expected: Int
        /// The view lists this worker (it may have been dropped as lost).
        public var listsThisWorker: Bool

        public init(epoch: Int, ready: Bool, members: Int, expected: Int, listsThisWorker: Bool) {
            (self.epoch, self.ready, self.members, self.expected, self.listsThisWorker) = (epoch, ready, members, expected, listsThisWorker)
        }
    }

    /// How a round of training ended.
    public enum TrainingEnd: Sendable {
        /// The run's last round is done.
        case finished
        /// A worker joined: the ring forms anew with it at the next round's end.
        case ringChanged
        /// A peer failed mid-collective.
        case peerFailed(RingFailure)
    }

    /// Why a worker gives up.
    public enum GiveUp: Sendable, Equatable {
        case ringDidNotFill(members: Int, expected: Int)
        case lostWorkerNotDropped(epoch: Int)
        case notInRing
        case runFinishedWithoutThisWorker
        /// Formed too often; the last failure is the reason.
        case tooManyReforms(last: String)
    }

    public enum Action: Sendable, Equatable {
        /// Look at the coordinator's ring view after a pause, and report it with `ringSeen`.
        case pollRing(after: Duration)
        /// Form the ring of `epoch` (dial the next peer, accept the previous) within `patience`.
        case formRing(epoch: Int, patience: Duration)
        /// Train with the run's strategy. `resume`: agree with the others where to go on from;
        /// `takesState`: this worker's own saved state is stale, take the named source's.
        case train(epoch: Int, resume: Bool, takesState: Bool)
        /// Send the last reports, close the ring and leave the run.
        case leave
        /// Stop with an error.
        case giveUp(GiveUp)
    }

    enum State: Sendable, Equatable {
        case idle
        case waiting(deadline: Instant)
        case forming(epoch: Int)
        case training(epoch: Int)
        case done
    }

    public let policy: Policy
    private(set) var state: State = .idle
    /// Go on from agreed state rather than start over.
    public private(set) var resume: Bool
    /// Joined a ring that trains and has not completed a round in it yet.
    public private(set) var joining: Bool
    /// The ring view must be of this epoch or newer (after a loss, one without the lost worker).
    public private(set) var minimumEpoch = 0
    public private(set) var reforms = 0

    public init(policy: Policy = Policy(), resume: Bool, joinsRunningRing: Bool) {
        self.policy = policy
        // A worker joining a ring that trains agrees with the others on where to go on from.
        self.resume = resume || joinsRunningRing
        joining = joinsRunningRing
    }

    /// The worker has joined the run: wait for its ring.
    public mutating func start(now: Instant) -> Action {
        precondition(state == .idle, "[WorkerLifecycle] started twice")
        return waitForRing(after: .zero, now: now)
    }

    /// The driver looked at the ring view.
    public mutating func ringSeen(_ view: RingSighting, now: Instant) -> Action {
        guard case let .waiting(deadline) = state else { preconditionFailure("[WorkerLifecycle] ring seen while \(state)") }
        if view.ready && view.epoch >= minimumEpoch {
            guard view.listsThisWorker else { return giveUp(.notInRing) }
            state = .forming(epoch: view.epoch)
            return .formRing(epoch: view.epoch, patience: minimumEpoch > 0 ? policy.reformPatience : joining ? policy.joinPatience : policy.patience)
        }
        guard now < deadline else {
            return giveUp(minimumEpoch == 0 ? .ringDidNotFill(members: view.members, expected: view.expected)
                                            : .lostWorkerNotDropped(epoch: view.epoch))
        }
        return .pollRing(after: policy.pollInterval)
    }

    /// The ring formed: train in it.
    public mutating func ringFormed() -> Action {
        guard case let .forming(epoch) = state else { preconditionFailure("[WorkerLifecycle] formed while \(state)") }
        state = .training(epoch: epoch)
        return .train(epoch: epoch, resume: resume, takesState: joining)
    }

    /// Forming failed (a peer still busy with an older ring, or lost meanwhile): try again with
    /// the newest view, unless the run finished or this worker tried too often.
    public mutating func formFailed(_ failure: RingFailure, runFinished: Bool, now: Instant) -> Action {
        guard case .forming = state else { preconditionFailure("[WorkerLifecycle] form failed while \(state)") }
        guard reforms < policy.maxReforms else { return giveUp(.tooManyReforms(last: "\(failure)")) }
        if runFinished { return giveUp(.runFinishedWithoutThisWorker) }
        reforms += 1
        return waitForRing(after: policy.retryDelay, now: now)
    }

    /// Training in the ring ended. `completedARound`: this worker finished a round in some ring
    /// (from then on, what it remembers is as good as anyone's).
    public mutating func trainingEnded(_ end: TrainingEnd, completedARound: Bool, now: Instant) -> Action {
        guard case let .training(epoch) = state else { preconditionFailure("[WorkerLifecycle] training ended while \(state)") }
        switch end {
        case .finished:
            state = .done
            return .leave
        case .ringChanged, .peerFailed:
            // A join is the run growing, not something going wrong: only failures count
            // against the bound, so a long run that takes in many workers does not give up.
            if case let .peerFailed(failure) = end {
                guard reforms < policy.maxReforms else { return giveUp(.tooManyReforms(last: "\(failure)")) }
                reforms += 1
            }
            // Go on with the others (without the lost worker, or with the new one) from the
            // last round all of them completed, in a ring of a newer epoch.
            resume = true
            minimumEpoch = epoch + 1
            if completedARound { joining = false }
            return waitForRing(after: .zero, now: now)
        }
    }

    private mutating func waitForRing(after pause: Duration, now: Instant) -> Action {
        state = .waiting(deadline: now.advanced(by: pause + policy.patience))
        return .pollRing(after: pause)
    }

    private mutating func giveUp(_ why: GiveUp) -> Action {
        state = .done
        return .giveUp(why)
    }
}
