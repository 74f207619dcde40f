import Basics
import ClusterRuns
import Coordination
import Foundation
import Training

/// `tributary experiment chaos`: the same run twice, undisturbed and under a `ChaosPlan`, and
/// what the faults cost: training efficiency (tokens that reached the shared model ÷ tokens the
/// workers computed), recovery times, final loss against the undisturbed run, and whether every
/// checkpoint verifies.
public struct ChaosExperiment {
    public var workers = 4
    /// Optimizer steps of the run (DiLoCo rounds of `innerSteps`, by step count).
    public var steps = 340
    public var innerSteps = 20
    /// Failures per minute over the chaos window, which lasts `minutes`.
    public var perMinute = 1.0
    public var minutes = 10.0
    public var seed: UInt64 = 1
    /// Every worker's emulated link (`LinkSpec`): loss does not depend on it, but a run's length
    /// and its recovery times do.
    public var link = "unlimited"
    /// A config to run instead of the default local one (its strategy section is kept but for
    /// round kind: rounds end by step count, so every round's tokens are known).
    public var config: TrainConfig?
    public var runs: URL
    public var executable: URL

    public init(runs: URL, executable: URL) {
        self.runs = runs
        self.executable = executable
    }

    public struct Run: Codable, Sendable {
        public var outcome: ChaosRun.Outcome
        public var analysis: ChaosAnalysis
    }

    public struct Report: Codable, Sendable {
        public var workers: Int
        public var steps: Int
        public var perMinute: Double
        public var minutes: Double
        public var seed: UInt64
        public var link: String
        public var plan: ChaosPlan
        public var undisturbed: Run
        public var chaos: Run
        /// Chaos final validation loss ÷ undisturbed − 1.
        public var lossGap: Double?
    }

    /// The run's config: the given one or the default local run's, with rounds of a step count.
    func runConfig(log: (String) -> Void) throws -> TrainConfig {
        var c: TrainConfig
        if let config { c = config } else {
            (c, _) = try defaultLocalRun(runs: runs, log: log)
            c.steps = steps
            c.strategy.innerSteps = innerSteps
            c.evaluation.interval = 100
            c.checkpoint.interval = 100
        }
        c.strategy.round = .steps
        try c.validate()
        return c
    }

    public func run(folder: URL, isInterrupted: @escaping @Sendable () -> Bool, log: @escaping @Sendable (String) -> Void) async throws -> Report {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = try runConfig(log: log)
        var options = LocalRunOptions(executable: executable)
        options.workers = workers
        options.speeds = Array(repeating: 1, count: workers)
        let throttles = try options.throttles(cores: UsableCores.count)
        let plan = ChaosPlan(seed: seed, workers: workers, seconds: minutes * 60, perMinute: perMinute)
        let h = config.strategy.name == .diloco ? config.strategy.innerSteps : 1
        let tokensOfRound = { (round: Int) in max(0, min(h, config.steps - round * h)) * config.tokensPerStep }

        func measure(_ name: String, plan: ChaosPlan?, timeLimit: Double = 3600) async throws -> Run {
            log("\n== \(name): \(workers) workers, \(config.steps) steps" + (plan.map { ", \($0.events.count) planned failures" } ?? ""))
            var run = ChaosRun(executable: executable, config: config, folder: folder.appendingPathComponent(name), throttles: throttles)
            run.plan = plan
            run.link = link
            run.timeLimit = timeLimit
            let outcome = try await run.run(isInterrupted: isInterrupted, log: log)
            let (history, _) = try RunHistory.load(folder: folder.appendingPathComponent(name).appendingPathComponent("run"))
            let analysis = ChaosAnalysis(records: history.reports, kills: outcome.kills, disturbances: outcome.doneAt,
                                         tokensOfRound: tokensOfRound)
            log(String(format: "%@: %.0f s, efficiency %.1f%%, validation %@", name, outcome.wallSeconds, analysis.efficiency * 100,
                       analysis.finalValidationLoss.map { String(format: "%.4f", $0) } ?? "?"))
            return Run(outcome: outcome, analysis: analysis)
        }
        let undisturbed = try await measure("undisturbed", plan: nil)
        // A run that stalls under failures fails in bounded time (a test must not wait an hour).
        let chaos = try await measure("chaos", plan: plan, timeLimit: max(300, 5 * undisturbed.outcome.wallSeconds + plan.seconds))
        var gap: Double?
        if let c = chaos.analysis.finalValidationLoss, let u = undisturbed.analysis.finalValidationLoss { gap = c / u - 1 }
        let report = Report(workers: workers, steps: config.steps, perMinute: perMinute, minutes: minutes, seed: seed, link: link,
                            plan: plan, undisturbed: undisturbed, chaos: chaos, lossGap: gap)
        try writeExperimentReport(report, markdown: ChaosReport(report: report).markdown(), folder: folder)
        return report
    }
}

/// The chaos experiment's report as Markdown.
public struct ChaosReport {
    public let report: ChaosExperiment.Report

    public init(report: ChaosExperiment.Report) { self.report = report }

    public func markdown() -> String {
        let r = report, c = r.chaos, u = r.undisturbed
        func loss(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "–" }
        func pct(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        var lines = [
            "# Chaos: \(r.workers) workers, \(r.steps) steps, \(String(format: "%g", r.perMinute)) failures a minute for "
                + "\(String(format: "%g", r.minutes)) minutes (seed \(r.seed))" + (r.link == "unlimited" ? "" : ", links \(r.link)"),
            "",
            "Workers killed (SIGKILL, started again under their name after \(Int(r.plan.restartSeconds)) s) or frozen (SIGSTOP for "
                + "\(Int(r.plan.freezeSeconds)) s) at random, and the coordinator killed once (started again with the same command "
                + "line after \(Int(r.plan.coordinatorSeconds)) s): every process real, on loopback, TLS as always.",
            "",
            "| | undisturbed | chaos | target |",
            "|---|---|---|---|",
            "| wall time | \(Int(u.outcome.wallSeconds)) s | \(Int(c.outcome.wallSeconds)) s | |",
            "| failures carried out | 0 | \(c.outcome.done.count) (\(c.outcome.skipped) skipped: target already down or run ending) | |",
            "| training efficiency (tokens reaching the model ÷ tokens computed) | \(pct(u.analysis.efficiency)) | "
                + "\(pct(c.analysis.efficiency)) | ≥ 80% |",
            "| tokens computed / committed | \(u.analysis.computedTokens) / \(u.analysis.committedTokens) | "
                + "\(c.analysis.computedTokens) / \(c.analysis.committedTokens) | |",
            "| final validation loss | \(loss(u.analysis.finalValidationLoss)) | \(loss(c.analysis.finalValidationLoss)) "
                + "(\(r.lossGap.map { String(format: "%+.2f%%", $0 * 100) } ?? "–")) | within 1% |",
            "| checkpoints verified | \(u.outcome.checkpoints - u.outcome.damagedCheckpoints.count)/\(u.outcome.checkpoints) | "
                + "\(c.outcome.checkpoints - c.outcome.damagedCheckpoints.count)/\(c.outcome.checkpoints) | all |",
            "| workers that failed on their own | \(u.outcome.unexpectedExits.count) | \(c.outcome.unexpectedExits.count) | 0 |",
            "| median round time | \(u.analysis.medianRoundSeconds.map { String(format: "%.1f s", $0) } ?? "–") | "
                + "\(c.analysis.medianRoundSeconds.map { String(format: "%.1f s", $0) } ?? "–") | |",
            "",
            "Recovery: seconds from each failure until the run reported a round it had not reached before.",
            "",
            "| at | failure | recovered after |",
            "|---|---|---|",
        ]
        for (i, event) in c.outcome.done.enumerated() {
            let recovery = i < c.analysis.recoverySeconds.count ? c.analysis.recoverySeconds[i].map { String(format: "%.1f s", $0) } ?? "run ended" : "–"
            lines.append("| \(String(format: "%.0f s", event.at)) | \(event.kind.rawValue) \(event.worker.map { "worker-\($0)" } ?? "coordinator") | \(recovery) |")
        }
        if !c.outcome.damagedCheckpoints.isEmpty {
            lines += ["", "Damaged checkpoints:", ""] + c.outcome.damagedCheckpoints.map { "- \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
