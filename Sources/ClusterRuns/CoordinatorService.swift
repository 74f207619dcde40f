import Basics
import Coordination
import CoordinationServer
import Foundation
import Logging
import RunTrust
import RunViews
import ModelCore
import Training

/// Why a coordinator could not serve.
public struct CoordinatorServiceError: Error, CustomStringConvertible {
    public var address: String
    public var reason: String
    public var description: String { "cannot serve on \(address): \(reason)" }
}

/// Once a run finished, the longest its coordinator stays up for lost workers to hear so (seconds).
let lostWorkerGrace = 60.0

/// Serves a run's coordinator until the run finishes: membership on `host:port` (`onListening`
/// gets the bound port), every worker's reports into the run folder.
/// `continuesSavedRun`: take back a coordinator state saved in `folder` (a restarted coordinator
/// whose workers kept running); `local`, which starts its workers anew, starts a new one.
/// `secure`: serve HTTPS and certify each worker's ring key at join, with the run's authority
/// (`run-ca.pem` and its key in `folder`, made at the first start and kept for restarts).
public func serveCoordinator(config: TrainConfig, workers: Int, token: String, host: String, port: Int, folder: URL,
                             heartbeatTimeout: Double, continuesSavedRun: Bool = true, secure: Bool = true, logger: Logger,
                             onListening: @escaping @Sendable (Int) async -> Void) async throws {
    let layout = ParameterLayout(config: config.model)
    let configYAML = try config.yaml()
    let run = RunDescription(runID: UInt64.random(in: 1...UInt64.max), expectedWorkers: workers, configYAML: configYAML,
                             layoutHash: hex16(layout.hash))
    // A coordinator restarted on its run folder goes on with the run it left: same id, members
    // and credentials (the workers kept training and find it again). A finished run starts anew.
    var state = CoordinatorState(run: run, token: token, heartbeatTimeout: heartbeatTimeout)
    var restored = false
    if continuesSavedRun, let saved = try ClusterRunFolder.savedCoordinatorState(in: folder), !saved.isFinished {
        guard saved.runDescription.configYAML == configYAML, saved.runDescription.expectedWorkers == workers else {
            throw CoordinatorServiceError(address: "\(host):\(port)", reason: "\(folder.path) holds the coordinator state of another run "
                + "(other config or --workers); give the same config and --workers to continue it, or a new --out")
        }
        state = CoordinatorState(restoring: saved, token: token, heartbeatTimeout: heartbeatTimeout, now: 0)
        restored = true
        logger.warning("continuing the run from its saved coordinator state", metadata: ["epoch": "\(state.epoch)"])
    }
    // What the run did before (a restarted coordinator, a resumed run) stays on its dashboard.
    let (history, skipped) = try RunHistory.load(folder: folder)
    if skipped > 0 { logger.warning("skipped lines of the run folder that are not reports or events", metadata: ["lines": "\(skipped)"]) }
    if restored { state.reconcile(with: history) }
    let runFolder = try ClusterRunFolder(url: folder, config: config)
    let authority = secure ? try RunAuthority.loadOrCreate(folder: folder, runName: folder.lastPathComponent) : nil
    let coordinator = Coordinator(state: state, history: history, authority: authority, logger: logger, onReport: { runFolder.append($0, positionByName: $1) },
                                  onEvent: { runFolder.append($0) }, onSave: { runFolder.save($0) })
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            do {
                try await CoordinatorServer.run(coordinator, host: host, port: port, logger: logger, onListening: onListening)
            } catch {
                throw CoordinatorServiceError(address: "\(host):\(port)", reason: "\(error)")
            }
        }
        group.addTask {
            while await coordinator.status().phase != .finished { try await Task.sleep(nanoseconds: 200_000_000) }
            // The finished run's page beside its files (every last report is in; `tributary report`
            // writes it again on demand, goodbyes included). Before the wait: `local` stops the
            // coordinator as soon as its workers exit.
            do { try RunReportPage.write(folder: folder) } catch {
                logger.warning("could not write the run's report page", metadata: ["reason": "\(error)"])
            }
            // Let the goodbyes land.
            try await Task.sleep(nanoseconds: 1_000_000_000)
            // A worker lost near the end (frozen, say) may wake after it: for a while it is told that the
            // run finished, instead of retrying a coordinator that is gone for its whole patience.
            let lost = await coordinator.status().members.filter { $0.state == .lost }.map(\.name)
            if !lost.isEmpty {
                logger.info("the run finished; answering its lost workers for up to \(Int(lostWorkerGrace)) s",
                            metadata: ["lost": "\(lost.joined(separator: ", "))"])
                let until = Date().addingTimeInterval(lostWorkerGrace)
                while Date() < until, await coordinator.status().members.contains(where: { $0.state == .lost }) {
                    try await Task.sleep(nanoseconds: 200_000_000)
                }
            }
        }
        try await group.next()
        group.cancelAll()
    }
}
