import Basics
import Benchmarks
import ClusterRuns
import Foundation
import Planner
import Training
import Transport

/// The planner against Tributary's own runs: calibrate this CPU with `bench engine`'s configs,
/// predict the step time of `tributary local` runs from the planner's cost model (the workers as
/// one-device sites on the emulated links), then run them and compare.
public struct PlannerExperiment {
    public var workers = 4
    /// Emulated link of every worker.
    public var link = "100mbit,40ms"
    /// Optimizer steps of the DDP run and of the DiLoCo runs.
    public var ddpSteps = 30, dilocoSteps = 200
    /// Timed steps per bench engine config.
    public var benchSteps = 2
    /// Parent of the prepared corpus.
    public var runs: URL
    /// The `tributary` binary the workers run.
    public var executable: URL

    public init(runs: URL, executable: URL) {
        self.runs = runs
        self.executable = executable
    }

    public struct Variant: Codable, Sendable {
        public var name: String
        public var strategy: String
        public var codec: String
        public var innerSteps: Int?
        public var speeds: String
        public var steps: Int
    }

    public struct Result: Codable, Sendable {
        public var variant: Variant
        public var predictedStepSeconds: Double
        public var predictedComputeSeconds: Double
        public var predictedSyncSecondsPerStep: Double
        public var measuredStepSeconds: Double
        public var error: Double { predictedStepSeconds / measuredStepSeconds - 1 }
    }

    public struct Report: Codable, Sendable {
        public var calibration: CPUCalibration
        public var workers: Int
        public var link: String
        public var results: [Result]
    }

    /// Cases the CPU is calibrated on: not the local run's model (h 128, V 4096), so that its
    /// step time is predicted rather than measured.
    public static let calibrationCases = EngineBenchmark.cases.filter { ["gpt2Small-B4-T64", "L4-C256-B8-T256"].contains($0.name) }

    /// Calibrates, predicts and runs every variant into `folder`; writes the report there.
    public func run(folder: URL, isInterrupted: @escaping @Sendable () -> Bool,
                    events: @escaping @Sendable (LocalRunEvent) -> Void) async throws -> Report {
        func say(_ line: String) { events(.notice(line)) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let link = try LinkSpec(parsing: self.link)
        guard let rate = link.bytesPerSecond else { throw LocalRunError(reason: "--link must have a rate to predict from, e.g. 100mbit,40ms") }
        let siteLink = SiteLink(gbps: rate * 8 / 1e9, latencyMs: link.delaySeconds * 1e3)

        say("== calibrating this CPU (one thread, as each local worker runs) with bench engine")
        let calibration = try CPUCalibration.measure(threads: 1, steps: benchSteps, cases: Self.calibrationCases) { say($0) }
        for c in calibration.cases {
            say(String(format: "  %@: step %.3f s measured; cost model %.3f s of matrix products at the sgemm rate + %.3f s other → achievable %.2f",
                       c.name as NSString, c.measuredSeconds, c.matrixSecondsAtPeak, c.otherSeconds, c.achievable))
        }
        say(String(format: "  sgemm %.1f GFLOP/s, copy %.1f GB/s, narrow-matrix width %.0f, achievable %.2f (median)", calibration.sgemmGFLOPs,
                   calibration.memoryBandwidthGBs, calibration.narrowMatrixWidth, calibration.achievable))

        // The default local model and corpus, evaluated only at the end, no checkpoints.
        var (config, _) = try defaultLocalRun(runs: runs, log: say)
        config.evaluation.interval = 0
        config.evaluation.batches = 4
        config.checkpoint.interval = 0
        config.checkpoint.keep = 1
        config.strategy.round = .steps
        try config.yaml().write(to: folder.appendingPathComponent("experiment.yaml"), atomically: true, encoding: .utf8)

        let variants = [
            Variant(name: "ddp", strategy: "ddp", codec: "fp32", innerSteps: nil, speeds: "1", steps: ddpSteps),
            Variant(name: "diloco-h20-int8", strategy: "diloco", codec: "int8", innerSteps: 20, speeds: "1", steps: dilocoSteps),
            Variant(name: "diloco-h20-int8-mixed", strategy: "diloco", codec: "int8", innerSteps: 20,
                    speeds: ([1.0, 1, 0.5, 0.5] + Array(repeating: 0.5, count: max(0, workers - 4))).prefix(workers).map { String($0) }.joined(separator: ","),
                    steps: dilocoSteps),
        ]
        var results: [Result] = []
        for v in variants {
            say("\n== \(v.name): tributary local --strategy \(v.strategy) --codec \(v.codec)\(v.innerSteps.map { " --inner-steps \($0) --round steps" } ?? "") --speeds \(v.speeds) --link \(self.link) --steps \(v.steps)")
            var run = config
            run.strategy.name = StrategyConfig.Name(rawValue: v.strategy)!
            run.strategy.codec = v.codec
            if let h = v.innerSteps { run.strategy.innerSteps = h }
            run.steps = v.steps
            var options = LocalRunOptions(executable: executable)
            options.workers = workers
            options.link = self.link
            let speeds = v.speeds.split(separator: ",").compactMap { Double($0) }
            options.speeds = speeds.count == 1 ? Array(repeating: speeds[0], count: workers) : speeds
            let runFolder = folder.appendingPathComponent(v.name)
            let summary = try await LocalRun(options: options, config: run, folder: runFolder, isInterrupted: isInterrupted, events: events).run()
            let measured = try measuredStepSeconds(metrics: runFolder.appendingPathComponent("metrics.jsonl"))
            let plan = try predict(config: run, calibration: calibration, coreShares: summary.workers.map(\.speed), link: siteLink, variant: v)
            let compute = plan.sites.map(\.cost.stepSeconds).max() ?? 0
            let result = Result(variant: v, predictedStepSeconds: plan.stepSeconds, predictedComputeSeconds: compute,
                                predictedSyncSecondsPerStep: plan.crossSiteSecondsPerStep, measuredStepSeconds: measured)
            say(String(format: "%@: predicted %.3f s per step (compute %.3f + sync %.3f), measured %.3f s: %+.1f%%",
                       v.name as NSString, result.predictedStepSeconds, compute, plan.crossSiteSecondsPerStep, measured, 100 * result.error))
            results.append(result)
        }
        let report = Report(calibration: calibration, workers: workers, link: self.link, results: results)
        try writeExperimentReport(report, markdown: Self.markdown(report), folder: folder)
        return report
    }

    /// The planner's prediction: every worker a one-device site of this CPU at its share of a
    /// core, per-device links at the emulated rate (the emulator delivers it in full), the
    /// worker's whole batch as one micro-batch, and the sites syncing every step (DDP, fp32) or
    /// every H steps through the codec (DiLoCo).
    func predict(config: TrainConfig, calibration: CPUCalibration, coreShares: [Double], link: SiteLink, variant: Variant) throws -> Plan {
        let devices = coreShares.enumerated().map { calibration.device(name: "cpu-\($0.offset)", speed: $0.element, nicGbps: link.gbps) }
        let sites = devices.enumerated().map { SiteSpec(name: "worker-\($0.offset)", device: $0.element.name, count: 1) }
        let cluster = ClusterSpec(name: "local", sites: sites,
                                  links: InterSiteLinks(default: link, perDevice: true, efficiency: 1))
        let model = CPUCalibration.modelSpec(config.model, sequenceLength: config.sequenceLength, name: "local")
        let training = CPUCalibration.trainingSpec(batch: config.batchSize * coreShares.count)
        let bytesPerValue: Double = ["fp32": 4, "fp16": 2, "bf16": 2, "int8": 1.001, "int4": 0.501][variant.codec] ?? 4
        let sync = SiteSync(interval: variant.innerSteps ?? 1, codec: variant.codec, bytesPerValue: bytesPerValue, tokenPremium: 1)
        var layouts: [String: GroupLayout] = [:]
        for s in sites { layouts[s.name] = GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 1, microBatch: config.batchSize, recompute: false) }
        return try Planner.evaluate(cluster: cluster, catalogue: DeviceCatalogue(devices: devices), model: model, training: training,
                                    layouts: layouts, sync: sync)
    }

    /// Seconds per step of the run: the slowest worker's elapsed time over its steps between
    /// its first and last report, so that start-up and the final validation stay out.
    func measuredStepSeconds(metrics: URL) throws -> Double {
        struct Line: Decodable { var name: String; var steps: Int; var elapsedSeconds: Double; var finished: Bool? }
        let lines = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        var slowest = 0.0
        for (_, reports) in Dictionary(grouping: lines, by: \.name) {
            let timed = reports.filter { $0.finished != true }
            guard let first = timed.first, let last = timed.last, last.steps > first.steps else { continue }
            slowest = max(slowest, (last.elapsedSeconds - first.elapsedSeconds) / Double(last.steps - first.steps))
        }
        guard slowest > 0 else { throw LocalRunError(reason: "\(metrics.path) has too few reports to time the steps") }
        return slowest
    }

    public static func markdown(_ r: Report) -> String {
        var lines = ["# Planner vs measured: `tributary local` step times", ""]
        lines.append(String(format: "Calibration (`bench engine` configs at one thread): sgemm %.1f GFLOP/s, copy %.1f GB/s, narrow-matrix width %.0f, achievable %.2f.",
                            r.calibration.sgemmGFLOPs, r.calibration.memoryBandwidthGBs, r.calibration.narrowMatrixWidth, r.calibration.achievable))
        for c in r.calibration.cases {
            lines.append(String(format: "- %@: measured %.3f s per step; the cost model gives %.3f s of matrix products at the sgemm rate and %.3f s of other work → achievable %.2f",
                                c.name as NSString, c.measuredSeconds, c.matrixSecondsAtPeak, c.otherSeconds, c.achievable))
        }
        lines += ["", "\(r.workers) workers, each link \(r.link); the local model (L4, C128, V4096, 8 × 128 tokens per worker step) is not a calibration config.", "",
                  "| run | speeds | steps | predicted s/step (compute + sync) | measured s/step | error |", "|---|---|---|---|---|---|"]
        for x in r.results {
            lines.append(String(format: "| %@ | %@ | %d | %.3f (%.3f + %.3f) | %.3f | %+.1f%% |", x.variant.name as NSString, x.variant.speeds as NSString,
                                x.variant.steps, x.predictedStepSeconds, x.predictedComputeSeconds, x.predictedSyncSecondsPerStep,
                                x.measuredStepSeconds, 100 * x.error))
        }
        let worst = r.results.map { abs($0.error) }.max() ?? 0
        lines += ["", String(format: "Largest error: %.1f%% (target: within 15%%).", 100 * worst)]
        return lines.joined(separator: "\n") + "\n"
    }
}
