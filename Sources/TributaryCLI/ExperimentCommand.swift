import ArgumentParser
import ClusterRuns
import Experiments
import Foundation
import Training
import Transport

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Reproducible comparisons that write a markdown report and SVG plots.",
        subcommands: [StrategiesExperimentCommand.self, ScalingExperimentCommand.self, PlannerExperimentCommand.self,
                      ChaosExperimentCommand.self]
    )
}

/// The `tributary` binary, which experiments start as worker processes.
var ownExecutable: URL { Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0]) }

/// What every experiment takes besides its own settings: where its report goes, where the
/// corpus is prepared, and JSON output.
struct ExperimentOutput: ParsableArguments {
    @Option(help: "Report folder (default: a new one under runs/).") var out: String?
    @Option(help: "Parent of the report folder and of the prepared corpus.") var runs = "runs"
    @Flag(help: "Print the results as JSON.") var json = false

    /// Runs an experiment with its progress on standard error; prints its report (or JSON) and where it is.
    func run<R: Encodable>(prefix: String, _ body: (URL, InterruptFlag, ProgressOnStandardError) async throws -> (R, markdown: String))
        async throws {
        BLASCoreRestart.announce()
        let interrupt = InterruptFlag()
        try await reportingErrors {
            let folder = out.map { URL(fileURLWithPath: $0) } ?? RunDirectory.timestampedURL(under: URL(fileURLWithPath: runs), prefix: prefix)
            let progress = ProgressOnStandardError()
            defer { progress.finish() }
            let report: R, markdown: String
            do { (report, markdown) = try await body(folder, interrupt, progress) } catch is CancellationError where interrupt.isSet {
                printError("\ninterrupted; workers stopped. What ran so far is in \(folder.path)")
                throw ExitCode(130)
            }
            progress.finish()
            if json {
                try printJSON(report)
            } else {
                print("\n" + markdown)
                print("report: \(folder.appendingPathComponent("report.md").path)")
            }
        }
    }
}

/// DDP against DiLoCo variants on the same model, tokens, workers and links; then mixed speeds.
struct StrategiesExperimentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategies",
        abstract: "DDP vs DiLoCo (H=20, H=100, H=100 int4, H=100 top-k) on 4 workers over 100 Mbit/s, 40 ms links; then DiLoCo H=100 int4 at speeds 1, 0.5, 0.25, 0.25."
    )

    @Option(help: "Optimizer steps per worker (the same tokens for every strategy).") var steps = 400
    @Option(help: "Workers.") var workers = 4
    @Option(help: "Emulated link of every worker.") var link = "100mbit,40ms"
    @Option(help: "Only these variants (comma-separated names from the report), for quick checks.") var only: String?
    @OptionGroup var output: ExperimentOutput

    func run() async throws {
        try await output.run(prefix: "experiment-strategies") { folder, interrupt, progress in
            var experiment = StrategiesExperiment(runs: URL(fileURLWithPath: output.runs), executable: ownExecutable)
            experiment.steps = steps
            experiment.workers = workers
            experiment.link = link
            experiment.only = only.map { Set($0.split(separator: ",").map(String.init)) }
            let report = try await experiment.run(folder: folder, isInterrupted: { interrupt.isSet }) { progress.show($0) }
            return (report, StrategiesReport(report: report).markdown())
        }
    }
}

/// DiLoCo against DDP by workers and model size, on the same tokens (the scaling-law paper's Table 4 here).
struct ScalingExperimentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "DDP and DiLoCo (dense, int4, top-k, Muon) with 1, 2, 4 and 8 workers on the same tokens, for two model sizes, with the sweeps that pick their settings."
    )

    @Flag(help: "The small model only, fewer tokens and no sweeps (a few minutes).") var quick = false
    @Option(help: "Write report.md and the plots of this earlier run's folder again from its results.json; runs nothing.")
    var render: String?
    @OptionGroup var output: ExperimentOutput

    func run() async throws {
        if let render {
            let folder = URL(fileURLWithPath: render)
            let report = try reportingErrors { try ScalingExperiment.render(folder: folder) }
            if output.json { try printJSON(report) } else { print("report: \(folder.appendingPathComponent("report.md").path)") }
            return
        }
        try await output.run(prefix: "experiment-scaling") { folder, interrupt, progress in
            var experiment = ScalingExperiment(runs: URL(fileURLWithPath: output.runs), executable: ownExecutable)
            experiment.quick = quick
            let report = try await experiment.run(folder: folder, isInterrupted: { interrupt.isSet }) { progress.show($0) }
            return (report, ScalingReport(report: report).markdown())
        }
    }
}

/// The planner against Tributary's own runs.
struct PlannerExperimentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planner",
        abstract: "Calibrate this CPU with bench engine, predict local multi-worker step times with the planner, run them, compare."
    )

    @Option(help: "Workers.") var workers = 4
    @Option(help: "Emulated link of every worker.") var link = "100mbit,40ms"
    @Option(help: "Optimizer steps of the DDP run.") var ddpSteps = 30
    @Option(help: "Optimizer steps of the DiLoCo runs.") var dilocoSteps = 200
    @Option(help: "Timed steps per bench engine config.") var benchSteps = 2
    @OptionGroup var output: ExperimentOutput

    func run() async throws {
        try await output.run(prefix: "experiment-planner") { folder, interrupt, progress in
            var experiment = PlannerExperiment(runs: URL(fileURLWithPath: output.runs), executable: ownExecutable)
            experiment.workers = workers
            experiment.link = link
            experiment.ddpSteps = ddpSteps
            experiment.dilocoSteps = dilocoSteps
            experiment.benchSteps = benchSteps
            let report = try await experiment.run(folder: folder, isInterrupted: { interrupt.isSet }) { progress.show($0) }
            return (report, PlannerExperiment.markdown(report))
        }
    }
}

/// Workers killed, frozen and restarted at random, the coordinator once: what it costs.
struct ChaosExperimentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "A run undisturbed, then under failures at random (workers killed and restarted, frozen, the coordinator killed once): efficiency, recovery, final loss, checkpoints."
    )

    @Option(help: "Workers (default 4; --quick 3).") var workers: Int?
    @Option(help: "Optimizer steps of the default config (default 1500: about 13 minutes undisturbed on 2 cores with the right OpenBLAS kernels, so that 10 minutes of failures fall inside the run; --quick 120).") var steps: Int?
    @Option(help: "Failures a minute (default 1; --quick 4).") var failuresPerMinute: Double?
    @Option(help: "Minutes during which failures happen (default 10; --quick 2).") var minutes: Double?
    @Option(help: "Seed of the failure plan.") var seed: UInt64 = 1
    @Option(help: "Every worker's emulated link, RATE[,DELAY] (e.g. 100mbit,40ms); default unlimited.") var link = "unlimited"
    @Option(help: "Training config (YAML) instead of the default local one; rounds end by step count.") var config: String?
    @Flag(help: "A shorter experiment (under 10 minutes here).") var quick = false
    @OptionGroup var output: ExperimentOutput

    func validate() throws {
        if let workers { guard (2...16).contains(workers) else { throw ValidationError("--workers must be in 2...16") } }
        if let steps { guard steps >= 1 else { throw ValidationError("--steps must be positive") } }
        if let failuresPerMinute { guard (0...60).contains(failuresPerMinute) else { throw ValidationError("--failures-per-minute must be in 0...60") } }
        if let minutes { guard minutes > 0, minutes <= 600 else { throw ValidationError("--minutes must be in (0, 600]") } }
        do { _ = try LinkSpec(parsing: link) } catch { throw ValidationError("--link: \(error)") }
    }

    func run() async throws {
        try await output.run(prefix: "experiment-chaos") { folder, interrupt, progress in
            var experiment = ChaosExperiment(runs: URL(fileURLWithPath: output.runs), executable: ownExecutable)
            experiment.workers = workers ?? (quick ? 3 : 4)
            experiment.steps = steps ?? (quick ? 120 : 1500)
            experiment.perMinute = failuresPerMinute ?? (quick ? 4 : 1)
            experiment.minutes = minutes ?? (quick ? 2 : 10)
            experiment.seed = seed
            experiment.link = link
            experiment.config = try config.map { try TrainConfig.load(contentsOf: URL(fileURLWithPath: $0)) }
            let report = try await experiment.run(folder: folder, isInterrupted: { interrupt.isSet }) { progress.show(.notice($0)) }
            return (report, ChaosReport(report: report).markdown())
        }
    }
}
