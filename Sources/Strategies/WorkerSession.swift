import Basics
import Collectives
import Coordination
import CoordinationClient
import Dispatch
import Foundation
import Logging
import ModelCore
import NIOCore
import NIOPosix
import RunTrust
import Synchronization
import TensorCore
import Training
import Transport
import Wire

/// Everything a worker process needs to take part in a run.
public struct WorkerOptions: Sendable {
    public var coordinator: CoordinatorClient
    public var token: String
    public var name: String
    /// Address the data-plane listener binds.
    public var listenHost = "127.0.0.1"
    /// Address peers are told to dial (the listen address unless it is a wildcard).
    public var advertiseHost: String?
    /// Emulated link on this worker's connections.
    public var link = LinkSpec.unlimited
    /// Emulated relative speed (1 = this machine's speed).
    public var speed = 1.0
    public var threads = 1
    /// Where the worker that ends up rank 0 saves checkpoints of the shared model, and where
    /// every worker keeps its own state (`checkpoints/workers/<name>`) for resuming.
    public var checkpointFolder: URL?
    /// Go on from the newest state every worker saved instead of starting over.
    public var resume = false
    /// How long to wait for the coordinator and for the ring to fill.
    public var patience: TimeAmount = .seconds(600)
    /// A fault to inject on purpose (`--inject-fault`, for tests and demos of the update guard).
    public var fault: FaultInjection?

    public init(coordinator: CoordinatorClient, token: String, name: String) {
        self.coordinator = coordinator
        self.token = token
        self.name = name
    }
}

/// A worker's life: fetch the run, join, wait for the ring, train with the run's strategy,
/// report every round, leave. The decisions (when to form the ring, when to resume, when to give
/// up) are `WorkerLifecycle`'s; this driver performs them against the coordinator and the peers.
public enum WorkerSession {

    /// With `engine`, an engine outside this process trains the inner steps (see `InnerEngine`).
    public static func run(_ options: WorkerOptions, logger: Logger, engine: (any InnerEngine)? = nil) async throws -> WorkerReport {
        try await run(options, logger: logger, clock: ContinuousClock(), engine: engine)
    }

    /// `clock` paces polls and retries and dates the lifecycle's deadlines.
    public static func run<C: Clock>(_ options: WorkerOptions, logger: Logger, clock: C, engine: (any InnerEngine)? = nil)
        async throws -> WorkerReport where C.Duration == Duration {
        let client = options.coordinator
        let run = try await retrying(patience: options.patience, logger: logger) { try await client.run(token: options.token) }
        var config = try TrainConfig.load(yaml: run.configYAML, source: "the coordinator's config")
        config.threads = options.threads
        let layout = ParameterLayout(config: config.model)
        if let engine {
            if let refusal = config.strategy.refusalForOtherEngines { throw ConfigError(field: "strategy", reason: refusal) }
            try await engine.begin(layout: layout, config: config)
        }

        let group = MultiThreadedEventLoopGroup.singleton
        var peerOptions = PeerLink.Options(local: Hello(runID: run.runID, layoutHash: layout.hash, vectorLength: UInt64(layout.count),
                                                        rank: UInt32.max, name: options.name))
        peerOptions.link = options.link
        peerOptions.limits = FrameLimits(maxPayloadBytes: 8 << 20)
        // Over TLS to the coordinator, the ring is TLS too: the listener refuses every connection
        // until the certificate for this process's own key arrives with the join reply.
        let key = client.usesTLS ? WorkerKey() : nil
        peerOptions.security = key == nil ? .plain : .awaitingCertificate
        let listener = try await PeerListener.bind(host: options.listenHost, port: 0, options: peerOptions, group: group, logger: logger)
        defer { Task { await listener.close() } }
        let advertised = options.advertiseHost ?? (options.listenHost == "0.0.0.0" ? "127.0.0.1" : options.listenHost)
        let reply = try await client.join(JoinRequest(token: options.token, name: options.name, layoutHash: hex16(layout.hash),
                                                      dataHost: advertised, dataPort: listener.port, publicKeyPEM: key?.publicKeyPEM))
        if let key {
            guard let certificate = reply.certificatePEM, let authority = reply.authorityPEM else {
                throw CoordinatorClientError(reason: "the coordinator issued no certificate for this worker's ring connections; "
                    + "it runs without a run authority, so give this worker --insecure as well")
            }
            peerOptions.security = .tls(try PeerTLS(certificatePEM: certificate, key: key, authorityPEM: authority))
            listener.use(peerOptions.security)
        }
        logger.info("joined", metadata: ["admission": "\(reply.admission)", "run": "\(hex16(run.runID))"])
        if reply.joinsRunningRing == true {
            let source = reply.stateSource.map { "\($0.name) at \($0.host):\($0.port)" } ?? "the first member with state"
            logger.info("the run is training (round \(reply.round.map(String.init) ?? "?")): this worker takes its state from \(source) when the ring takes it in")
        }

        // Heartbeats keep us in the ring while we train, and tell us when a worker joined — or was
        // lost: then the ring we train in is closed at once, instead of waiting out a frame
        // timeout for a peer the coordinator already gave up on (a frozen one, say).
        let newest = Mutex<(epoch: Int, members: Set<String>)>((0, []))
        let training = TrainingRing()
        // Set when this worker finds it did not run for longer than the coordinator waits: its
        // round is stale (the others went on without it) and ends at the next step.
        let abandoned = Mutex(false)
        // The coordinator drops a member not heard from for this long.
        let lossTimeout = CoordinatorState.heartbeatsPerTimeout * reply.heartbeatSeconds
        // Watches for this process not running (SIGSTOP, a suspended VM): a task that only sleeps, and
        // wakes this much later than asked, was frozen. The coordinator has dropped this worker and the
        // others re-formed, so the round it trains is stale: leave it now instead of finishing it and
        // holding up the ring that takes it back. (Not the heartbeat task: frozen inside a request it
        // would not see it, and a request's length says nothing — a coordinator that is away is not this.)
        let interval = min(reply.heartbeatSeconds, 2), credential = reply.credential
        let watchdog = Task {
            while !Task.isCancelled {
                let asleep = DispatchTime.now().uptimeNanoseconds
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                let late = Double(DispatchTime.now().uptimeNanoseconds - asleep) / 1e9 - interval
                if late > lossTimeout, !Task.isCancelled {
                    // Its ring may already have failed under it (a peer's goodbye arrives first).
                    abandoned.withLock { $0 = true }
                    logger.warning("""
                        this worker did not run for \(String(format: "%.1f", late)) s, longer than the coordinator waits \
                        (\(String(format: "%g", lossTimeout)) s): the others went on without it; leaving its stale round
                        """)
                    if let stale = training.current.withLock({ current -> Ring? in defer { current = nil }; return current?.ring }) {
                        await stale.close()
                    }
                }
            }
        }
        defer { watchdog.cancel() }
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                do {
                    let view = try await client.heartbeat(options.name, credential: credential)
                    let members = Set(view.members.map(\.name))
                    newest.withLock { $0 = (view.epoch, members) }
                    let gone = training.current.withLock { current -> Ring? in
                        guard let ring = current?.ring, current?.members.isSubset(of: members) == false else { return nil }
                        current = nil
                        return ring
                    }
                    if let gone {
                        logger.warning("a member of the ring was dropped by the coordinator; leaving the round to re-form without it")
                        await gone.close()
                    }
                } catch { logger.warning("heartbeat failed: \(error)") }
            }
        }
        defer { heartbeat.cancel() }

        // Reports go out in order from one background task: training never waits for the
        // coordinator, and the coordinator never sees round 5 before round 4. While it cannot be
        // reached (restarting, say) a report is retried, so that none is lost.
        let (reports, outbox) = AsyncStream.makeStream(of: WorkerReport.self)
        let sender = Task {
            for await report in reports {
                do {
                    try await retrying(patience: options.patience, logger: logger) { try await client.report(report, credential: reply.credential) }
                } catch { logger.warning("report of round \(report.round) failed: \(error)") }
            }
        }
        defer { outbox.finish() }

        var policy = WorkerLifecycle<C.Instant>.Policy()
        policy.patience = .nanoseconds(options.patience.nanoseconds)
        var life = WorkerLifecycle<C.Instant>(policy: policy, resume: options.resume, joinsRunningRing: reply.joinsRunningRing == true)
        let started = DispatchTime.now().uptimeNanoseconds
        let latest = Mutex<WorkerReport?>(nil)
        let memory = RoundMemory()
        let ledger = ComputeLedger()
        var view: RingView?
        var ring: Ring?
        var final: WorkerReport?
        var lastWorker: DistributedTrainer?
        var lastFailure: RingFailure?
        // The ring of this epoch broke under training: until a newer one forms, polls say so (see
        // `CoordinatorState.ringBroken`), since a break that lost nobody brings no new epoch by itself.
        var broken: RingBroken?
        var action = life.start(now: clock.now)
        while true {
            switch action {
            case let .pollRing(pause):
                if pause > .zero { try await clock.sleep(for: pause) }
                let seen = try await retrying(patience: options.patience, logger: logger) {
                    if let broken { return try await client.ringBroken(broken, credential: reply.credential) }
                    return try await client.heartbeat(options.name, credential: reply.credential)
                }
                view = seen
                action = life.ringSeen(.init(epoch: seen.epoch, ready: seen.ready, members: seen.members.count, expected: run.expectedWorkers,
                                             listsThisWorker: seen.members.contains { $0.name == options.name }), now: clock.now)

            case let .formRing(epoch, patience):
                broken = nil
                let members = view!.members
                let position = members.firstIndex { $0.name == options.name }!
                peerOptions.local.rank = UInt32(position)
                peerOptions.local.ringEpoch = UInt64(epoch)
                let names = Set(members.map(\.name)), dialing = peerOptions
                do {
                    ring = try await formUnlessOvertaken {
                        newest.withLock { seen in
                            guard seen.epoch > epoch, !names.isSubset(of: seen.members) else { return nil }
                            let dropped = names.subtracting(seen.members).sorted().joined(separator: ", ")
                            return "the coordinator dropped \(dropped) (ring epoch \(seen.epoch))"
                        }
                    } form: {
                        try await Ring.form(rank: position, peers: members.map { ($0.host, $0.port) }, names: members.map(\.name),
                                            listener: listener, options: dialing, group: group, runID: run.runID,
                                            patience: TimeAmount(patience))
                    }
                    logger.info("ring formed", metadata: ["rank": "\(position)", "size": "\(members.count)", "epoch": "\(epoch)"])
                    action = life.ringFormed()
                } catch let failure as RingFailure {
                    lastFailure = failure
                    let finished = (try? await client.status())?.phase == .finished
                    action = life.formFailed(failure, runFinished: finished, now: clock.now)
                    if case .pollRing = action { logger.warning("forming the ring of epoch \(epoch) failed (\(failure)); trying again") }
                }

            case let .train(epoch, resume, takesState):
                let ring = ring!, members = view!.members
                let position = ring.rank
                let checkpoints = position == 0 ? options.checkpointFolder.map {
                    CheckpointStore(directory: $0.appendingPathComponent("checkpoints"), keep: config.checkpoint.keep)
                } : nil
                let workerState = options.checkpointFolder.map {
                    CheckpointStore(directory: $0.appendingPathComponent("checkpoints/workers/\(options.name)"), keep: max(2, config.checkpoint.keep))
                }
                let end: WorkerLifecycle<C.Instant>.TrainingEnd
                do {
                    let worker = try DistributedTrainer(config: config, ring: ring, name: options.name, speed: options.speed,
                                                        checkpoints: checkpoints, workerState: workerState, memory: memory)
                    if let earlier = latest.withLock({ $0 }) { worker.continueCounting(from: earlier, startedAt: started) }
                    // Unless the coordinator names it as the source: then nobody is ahead of it.
                    // A worker that was left behind (it did not run while the others went on; the flag
                    // holds until this next training) takes their state as a newcomer does instead of
                    // offering its own, which would send everyone back to where it stopped.
                    let behind = abandoned.withLock { $0 }
                    worker.joinsRunningRing = takesState || (behind && view!.stateSource.map { $0 != options.name } == true)
                    worker.memberNames = members.map(\.name)
                    worker.fault = options.fault
                    worker.ledger = ledger
                    worker.innerEngine = engine
                    worker.logger = logger
                    worker.directState = DirectStateTransfer(
                        listener: listener, options: peerOptions, group: group,
                        addresses: members.map { .init(host: $0.host, port: $0.port) }, names: members.map(\.name))
                    lastWorker = worker
                    worker.stateSource = members.firstIndex { $0.name == view!.stateSource }
                    let names = Set(members.map(\.name))
                    // Someone the ring does not have joined: re-form at the next round's end. (A lost
                    // member breaks the ring by itself.)
                    worker.ringChanged = { newest.withLock { $0.epoch > epoch && !$0.members.isSubset(of: names) } }
                    worker.roundAbandoned = { abandoned.withLock { $0 } }
                    abandoned.withLock { $0 = false }
                    training.current.withLock { $0 = (ring, Set(members.map(\.name))) }
                    defer { training.current.withLock { $0 = nil } }
                    final = try await worker.run(resume: resume) { report in
                        var stamped = report
                        stamped.epoch = epoch
                        stamped.linkBytesPerSecond = options.link.bytesPerSecond
                        latest.withLock { $0 = stamped }
                        outbox.yield(stamped)
                        engine?.roundReported(stamped)
                    }
                    end = .finished
                } catch {
                    await ring.close()
                    switch error {
                    case is RingChange: end = .ringChanged
                    case let failure as RingFailure:
                        (lastFailure, end) = (failure, .peerFailed(failure))
                        broken = RingBroken(name: options.name, epoch: epoch, reason: "\(failure)")
                    // This worker's config, data or saved state: forming the ring again cannot fix it.
                    default: throw error
                    }
                }
                action = life.trainingEnded(end, completedARound: latest.withLock { $0 } != nil, now: clock.now)
                if case .pollRing = action {
                    switch end {
                    case .ringChanged: logger.info("a worker joined: re-forming the ring with it")
                    case let .peerFailed(failure):
                        logger.warning("""
                            the ring broke (\(failure)); re-forming without the lost worker, to finish the broken round \
                            if every survivor trained it, else to go back to the last round every survivor completed
                            """)
                    case .finished: break
                    }
                }

            case .leave:
                if let engine, let lastWorker {
                    try await engine.runFinished(final!, parameters: UnsafeBufferPointer(lastWorker.trainer.model.parameters.buffer))
                }
                outbox.finish()
                await sender.value
                // Let the neighbours finish reading before the links close.
                try await clock.sleep(for: .milliseconds(200))
                await ring?.close()
                heartbeat.cancel()
                try? await client.leave(options.name, credential: reply.credential)
                return final!

            case let .giveUp(why):
                switch why {
                case let .ringDidNotFill(members, expected):
                    throw CoordinatorClientError(reason: "the ring did not fill: \(members) of \(expected) workers joined in time")
                case let .lostWorkerNotDropped(epoch):
                    throw CoordinatorClientError(reason: "the coordinator did not drop the lost worker in time (ring epoch still \(epoch))")
                case .notInRing:
                    throw CoordinatorClientError(reason: "the coordinator's ring does not list this worker")
                case .runFinishedWithoutThisWorker:
                    throw CoordinatorClientError(reason: "the run finished before this worker was taken into the ring")
                case .tooManyReforms:
                    throw lastFailure!
                }
            }
        }
    }

    /// Forms a ring with `form` unless `overtaken` (checked every 200 ms) gives a reason meanwhile: the
    /// coordinator dropped one of its members (killed or frozen). Then forming stops at once, instead of
    /// dialing or awaiting that member until the handshake timeout or the patience (600 s at a run's
    /// start), and the worker reads the newest ring.
    public static func formUnlessOvertaken(overtaken: @escaping @Sendable () -> String?,
                                           form: @escaping @Sendable () async throws -> Ring) async throws -> Ring {
        enum Outcome: Sendable { case formed(Ring), overtaken(String) }
        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask { .formed(try await form()) }
            group.addTask {
                while true {
                    try await Task.sleep(for: .milliseconds(200))
                    if let reason = overtaken() { return .overtaken(reason) }
                }
            }
            let first = try await group.next()!
            group.cancelAll()
            switch first {
            case let .formed(ring):
                return ring
            case let .overtaken(reason):
                // A ring that formed in the meantime is not used: its links are closed.
                while !group.isEmpty {
                    if case let .formed(ring)? = try? await group.next() { await ring.close() }
                }
                throw RingFailure(kind: .newerRing, peer: "the coordinator", round: nil, detail: reason)
            }
        }
    }

    /// Retries `body` with backoff (50 ms doubling to 1 s) while the coordinator is unreachable;
    /// a refusal (an HTTP answer) is final.
    static func retrying<T>(patience: TimeAmount, logger: Logger, _ body: () async throws -> T) async throws -> T {
        let deadline = NIODeadline.now() + patience
        var delay = 0.05
        var unanswered = 0
        while true {
            do { return try await body() } catch let error as CoordinatorClientError where error.status == nil && !error.isFinal {
                // A coordinator that keeps closing connections unanswered is not restarting.
                unanswered = error.closedUnanswered ? unanswered + 1 : 0
                guard NIODeadline.now() + .nanoseconds(Int64(delay * 1e9)) < deadline, unanswered < 5 else { throw error }
                logger.debug("coordinator not reachable yet: \(error)")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay = min(delay * 2, 1)
            }
        }
    }
}

/// The ring a worker trains in and its members, shared by its training and the tasks that may close
/// it under it (the heartbeat's and the freeze watchdog's).
private final class TrainingRing: Sendable {
    let current = Mutex<(ring: Ring, members: Set<String>)?>(nil)
}
