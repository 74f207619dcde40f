import Basics
import Collectives
import Coordination
import Dispatch
import Foundation
import Logging
import ModelCore
import NIOCore
import NIOPosix
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

    public init(coordinator: CoordinatorClient, token: String, name: String) {
        self.coordinator = coordinator
        self.token = token
        self.name = name
    }
}

/// A worker's life: fetch the run, join, wait for the ring, train with the run's strategy,
/// report every round, leave.
public enum WorkerSession {

    public static func run(_ options: WorkerOptions, logger: Logger) async throws -> WorkerReport {
        let client = options.coordinator
        let run = try await retrying(patience: options.patience, logger: logger) { try await client.run() }
        var config = try TrainConfig.load(yaml: run.configYAML, source: "the coordinator's config")
        config.threads = options.threads
        let layout = ParameterLayout(config: config.model)

        let group = MultiThreadedEventLoopGroup.singleton
        var peerOptions = PeerLink.Options(local: Hello(runID: run.runID, layoutHash: layout.hash, vectorLength: UInt64(layout.count),
                                                        rank: UInt32.max, name: options.name))
        peerOptions.link = options.link
        peerOptions.limits = FrameLimits(maxPayloadBytes: 8 << 20)
        let listener = try await PeerListener.bind(host: options.listenHost, port: 0, options: peerOptions, group: group, logger: logger)
        defer { Task { await listener.close() } }
        let advertised = options.advertiseHost ?? (options.listenHost == "0.0.0.0" ? "127.0.0.1" : options.listenHost)
        let reply = try await client.join(JoinRequest(token: options.token, name: options.name, layoutHash: hex16(layout.hash),
                                                      dataHost: advertised, dataPort: listener.port))
        logger.info("joined", metadata: ["rank": "\(reply.rank)", "run": "\(hex16(run.runID))"])
        if reply.joinsRunningRing == true {
            let source = reply.stateSource.map { "\($0.name) at \($0.host):\($0.port)" } ?? "the first member with state"
            logger.info("the run is training (round \(reply.round.map(String.init) ?? "?")): this worker takes its state from \(source) when the ring takes it in")
        }

        // Heartbeats keep us in the ring while we train, and tell us when a worker joined.
        let newest = Mutex<(epoch: Int, members: Set<String>)>((0, []))
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(min(reply.heartbeatSeconds, 2) * 1e9))
                do {
                    let view = try await client.heartbeat(options.name)
                    newest.withLock { $0 = (view.epoch, Set(view.members.map(\.name))) }
                } catch { logger.warning("heartbeat failed: \(error)") }
            }
        }
        defer { heartbeat.cancel() }

        // Reports go out in order from one background task: training never waits for the
        // coordinator, and the coordinator never sees round 5 before round 4.
        let (reports, outbox) = AsyncStream.makeStream(of: WorkerReport.self)
        let sender = Task {
            for await report in reports {
                do { try await client.report(report) } catch { logger.warning("report of round \(report.round) failed: \(error)") }
            }
        }
        defer { outbox.finish() }
        // A worker joining a ring that trains agrees with the others on where to go on from.
        var resume = options.resume || reply.joinsRunningRing == true
        var joining = reply.joinsRunningRing == true
        var minimumEpoch = 0
        var reforms = 0
        let started = DispatchTime.now().uptimeNanoseconds
        let latest = Mutex<WorkerReport?>(nil)
        let memory = RoundMemory()
        while true {
            let view = try await readyRing(client: client, name: options.name, minimumEpoch: minimumEpoch, patience: options.patience,
                                           expected: run.expectedWorkers)
            guard let position = view.members.firstIndex(where: { $0.name == options.name }) else {
                throw CoordinatorClientError(reason: "the coordinator's ring does not list this worker")
            }
            peerOptions.local.rank = UInt32(position)
            peerOptions.local.ringEpoch = UInt64(view.epoch)
            let ring: Ring
            do {
                // After a loss, a short patience: a peer still busy with an older ring is retried
                // with the newest view instead of being waited for.
                ring = try await Ring.form(rank: position, peers: view.members.map { ($0.host, $0.port) }, listener: listener,
                                           options: peerOptions, group: group, runID: run.runID,
                                           patience: minimumEpoch > 0 ? .seconds(10) : joining ? .seconds(30) : options.patience)
            } catch where reforms < maxReforms {
                if (try? await client.status())?.phase == .finished {
                    throw CoordinatorClientError(reason: "the run finished before this worker was taken into the ring")
                }
                // A peer may still be finishing the broken ring or its round before it takes in a
                // newcomer, or another one was lost meanwhile: try again with the newest view.
                reforms += 1
                logger.warning("forming the ring of epoch \(view.epoch) failed (\(error)); trying again")
                try await Task.sleep(nanoseconds: 500_000_000)
                continue
            }
            logger.info("ring formed", metadata: ["rank": "\(position)", "size": "\(ring.size)", "epoch": "\(view.epoch)"])
            let checkpoints = position == 0 ? options.checkpointFolder.map {
                CheckpointStore(directory: $0.appendingPathComponent("checkpoints"), keep: config.checkpoint.keep)
            } : nil
            let workerState = options.checkpointFolder.map {
                CheckpointStore(directory: $0.appendingPathComponent("checkpoints/workers/\(options.name)"), keep: max(2, config.checkpoint.keep))
            }
            let final: WorkerReport
            do {
                let worker = try DistributedTrainer(config: config, ring: ring, name: options.name, speed: options.speed,
                                                    checkpoints: checkpoints, workerState: workerState, memory: memory)
                if let earlier = latest.withLock({ $0 }) { worker.continueCounting(from: earlier, startedAt: started) }
                worker.joinsRunningRing = joining
                worker.stateSource = view.members.firstIndex { $0.name == view.stateSource }
                let epoch = view.epoch
                let members = Set(view.members.map(\.name))
                // Someone the ring does not have joined: re-form at the next round's end. (A lost
                // member breaks the ring by itself.)
                worker.ringChanged = { newest.withLock { $0.epoch > epoch && !$0.members.isSubset(of: members) } }
                final = try await worker.run(resume: resume) { report in
                    var stamped = report
                    stamped.epoch = epoch
                    latest.withLock { $0 = stamped }
                    outbox.yield(stamped)
                }
            } catch where reforms < maxReforms && isPeerFailure(error) {
                // A peer is gone: wait for the coordinator to drop it, then go on with the
                // others from the last round all of them completed.
                await ring.close()
                reforms += 1
                if error is RingChange {
                    logger.info("a worker joined: re-forming the ring with it")
                } else {
                    logger.warning("the ring broke (\(error)); re-forming without the lost worker and going back to the last round every survivor completed")
                }
                // Once in, what this worker remembers is as good as anyone's.
                (resume, minimumEpoch) = (true, view.epoch + 1)
                if latest.withLock({ $0 }) != nil { joining = false }
                continue
            } catch {
                await ring.close()
                throw error
            }
            outbox.finish()
            await sender.value
            // Let the neighbours finish reading before the links close.
            try await Task.sleep(nanoseconds: 200_000_000)
            await ring.close()
            heartbeat.cancel()
            try? await client.leave(options.name)
            return final
        }
    }

    /// Whether `error` came from the ring (a peer gone, a link closed or timed out) rather than
    /// from this worker's config, data or saved state, which re-forming cannot fix.
    static func isPeerFailure(_ error: any Error) -> Bool {
        !(error is ConfigError || error is CheckpointError || error is TrainingError || error is CoordinatorClientError
            || error is CancellationError)
    }

    /// How many times a worker re-forms its ring after losing peers before it gives up.
    static let maxReforms = 16

    /// Waits (heartbeating) for a ring that can form, of `minimumEpoch` or later.
    static func readyRing(client: CoordinatorClient, name: String, minimumEpoch: Int, patience: TimeAmount, expected: Int) async throws -> RingView {
        let deadline = NIODeadline.now() + patience
        var view = try await client.heartbeat(name)
        while !view.ready || view.epoch < minimumEpoch {
            guard NIODeadline.now() < deadline else {
                throw CoordinatorClientError(reason: minimumEpoch == 0
                    ? "the ring did not fill: \(view.members.count) of \(expected) workers joined in time"
                    : "the coordinator did not drop the lost worker in time (ring epoch still \(view.epoch))")
            }
            try await Task.sleep(nanoseconds: 200_000_000)
            view = try await client.heartbeat(name)
        }
        return view
    }

    /// Retries `body` with backoff (50 ms doubling to 1 s) while the coordinator is unreachable;
    /// a refusal (an HTTP answer) is final.
    static func retrying<T>(patience: TimeAmount, logger: Logger, _ body: () async throws -> T) async throws -> T {
        let deadline = NIODeadline.now() + patience
        var delay = 0.05
        while true {
            do { return try await body() } catch let error as CoordinatorClientError where error.status == nil {
                guard NIODeadline.now() + .nanoseconds(Int64(delay * 1e9)) < deadline else { throw error }
                logger.debug("coordinator not reachable yet: \(error)")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay = min(delay * 2, 1)
            }
        }
    }
}
