import Basics
import Coordination
import CoordinationServer
import Foundation
import Logging
import RunViews
import ModelCore
import Training

/// Why a coordinator could not serve.
public struct CoordinatorServiceError: Error, CustomStringConvertible {
    public var address: String
    public var reason: String
    public var description: String { "cannot serve on \(address): \(reason)" }
}

/// Serves a run's coordinator until the run finishes: membership on `host:port` (`onListening`
/// gets the bound port), every worker's reports into the run folder.
public func serveCoordinator(config: TrainConfig, workers: Int, token: String, host: String, port: Int, folder: URL,
                             heartbeatTimeout: Double, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void) async throws {
    let layout = ParameterLayout(config: config.model)
    let run = RunDescription(runID: UInt64.random(in: 1...UInt64.max), expectedWorkers: workers, configYAML: try config.yaml(),
                             layoutHash: hex16(layout.hash))
    // What the run did before (a restarted coordinator, a resumed run) stays on its dashboard.
    let (history, skipped) = try RunHistory.load(folder: folder)
    if skipped > 0 { logger.warning("skipped lines of the run folder that are not reports or events", metadata: ["lines": "\(skipped)"]) }
    let runFolder = try ClusterRunFolder(url: folder, config: config)
    let coordinator = Coordinator(state: CoordinatorState(run: run, token: token, heartbeatTimeout: heartbeatTimeout), history: history,
                                  logger: logger, onReport: { runFolder.append($0, positionByName: $1) }, onEvent: { runFolder.append($0) })
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
            do {
                let page = try RunReportPage.render(folder: folder)
                try Data(page.utf8).write(to: folder.appendingPathComponent("report.html"), options: .atomic)
            } catch {
                logger.warning("could not write the run's report page", metadata: ["reason": "\(error)"])
            }
            // Let the goodbyes land.
            try await Task.sleep(nanoseconds: 1_000_000_000)
        }
        try await group.next()
        group.cancelAll()
    }
}
