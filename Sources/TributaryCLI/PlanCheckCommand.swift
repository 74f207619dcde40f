import ArgumentParser
import Basics
import Foundation
import Planner

/// The planner against measured runs: the published ones shipped in configs/planner, or a
/// user's own (their clusters, layouts and step times).
struct PlanCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan-check",
        abstract: "Predict measured runs (model, cluster, layout, reported speed) and compare: a table, the share within 25%, the median error."
    )

    @Option(help: "Measured runs (YAML: runs with model, batch, sites, layout, reported; see configs/planner/published-runs.yaml).")
    var runs = "configs/planner/published-runs.yaml"
    @Option(help: "More devices (YAML, the catalogue's layout).") var devices: String?
    @Option(help: "Measured micro-batch times (YAML: measurements with device, model, microBatch, seconds) that calibrate the devices' achievable fractions.")
    var profile: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            guard let text = try? String(contentsOfFile: runs, encoding: .utf8) else { throw ValidationError("cannot read \(runs)") }
            let set = try MeasuredRuns(yaml: text, source: runs)
            let catalogue = try applyProfile(profile, to: try loadCatalogue(devicesFile: devices, measureCPU: false, threads: UsableCores.count))
            let checks = try set.check(catalogue: catalogue)
            let summary = measuredRunSummary(checks)
            if json {
                struct Report: Encodable {
                    var runs: [MeasuredRunCheck]
                    var withinTwentyFivePercent: Double
                    var medianAbsoluteError: Double
                }
                try printJSON(Report(runs: checks, withinTwentyFivePercent: summary.withinBound, medianAbsoluteError: summary.medianError))
                return
            }
            print("| run | source | layout the planner evaluated | predicted tokens/s per device | reported | error |")
            print("|---|---|---|---|---|---|")
            for c in checks {
                let layout = c.plan.pipelineAcrossSites.map { span in
                    "pipeline " + span.stages.map { "\($0.device)×\($0.tensorParallel):\($0.layers)" }.joined(separator: " → ")
                        + ", \(span.replicas) replica(s), micro-batch \(span.microBatch)"
                } ?? c.plan.sites.map { "\($0.devicesUsed) \($0.device): \($0.layout.summary)" }.joined(separator: "; ")
                print(String(format: "| %@ | %@ | %@ | %.0f | %.0f | %+.1f%% |", c.id as NSString, c.source as NSString, layout as NSString,
                             c.predictedTokensPerSecondPerDevice, c.reportedTokensPerSecondPerDevice, 100 * c.error))
            }
            print(String(format: "\n%d runs: %.0f%% within 25%%, median absolute error %.1f%%", checks.count, 100 * summary.withinBound,
                         100 * summary.medianError))
        }
    }
}
