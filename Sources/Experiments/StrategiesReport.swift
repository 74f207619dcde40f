import Basics
import ClusterRuns
import Foundation

/// The markdown report and SVG plots of `experiment strategies`.
public struct StrategiesReport {
    public let report: StrategiesExperiment.Report

    public init(report: StrategiesExperiment.Report) {
        self.report = report
    }

    private var ddp: LocalSummary? { report.results.first { $0.variant == "ddp" }?.summary }

    public func markdown() -> String {
        var md = "# Strategies on \(report.workers) workers over \(report.link) links\n\n"
        md += "Same model (the default `tributary local` GPT, 1.3M parameters, fortunes corpus), \(report.steps) optimizer steps of "
        md += "8×64 tokens per worker for every strategy (the same training tokens), equal speeds, DiLoCo rounds of a fixed step count.\n\n"
        md += "| variant | validation loss | vs DDP | bytes sent (all workers) | fewer bytes than DDP | wall time | compute utilisation |\n"
        md += "|---|---|---|---|---|---|---|\n"
        for r in report.results {
            let s = r.summary
            let loss = s.validationLoss.map { String(format: "%.4f", $0) } ?? "–"
            var delta = "–"
            if let v = s.validationLoss, let d = ddp?.validationLoss { delta = String(format: "%+.2f%%", (v / d - 1) * 100) }
            let fewer = ddp.map { String(format: "%.0f×", Double($0.bytesSent) / Double(max(s.bytesSent, 1))) } ?? "–"
            md += "| \(r.variant) | \(loss) | \(delta) | \(formatBytes(s.bytesSent)) | \(fewer) | \(formatDuration(s.wallSeconds)) | "
            md += String(format: "%.1f%% |\n", 100 * s.computeUtilisation)
        }
        md += "\nTargets:\n"
        if let ddp, let ddpLoss = ddp.validationLoss {
            let compressed = report.results.filter { $0.variant.hasPrefix("diloco") && $0.variant != "diloco-h20" && $0.variant != "diloco-h100" }
            for r in compressed {
                guard let loss = r.summary.validationLoss else { continue }
                let within = loss <= ddpLoss * 1.02
                let ratio = Double(ddp.bytesSent) / Double(max(r.summary.bytesSent, 1))
                md += "- \(r.variant): loss within 2% of DDP: \(within ? "yes" : "no") (\(String(format: "%+.2f%%", (loss / ddpLoss - 1) * 100))); "
                md += "≥500× fewer bytes: \(ratio >= 500 ? "yes" : "no") (\(String(format: "%.0f×", ratio)))\n"
            }
        }
        for r in report.results where r.variant.hasPrefix("diloco") {
            md += "- \(r.variant): compute utilisation ≥ 90%: \(r.summary.computeUtilisation >= 0.9 ? "yes" : "no") "
            md += String(format: "(%.1f%%)\n", 100 * r.summary.computeUtilisation)
        }
        if let mixed = report.mixedSpeeds?.summary {
            md += "\n## Mixed speeds\n\n"
            md += "DiLoCo H=100 int4 with time-budget rounds (100 steps of the fastest worker), relative speeds 1, 0.5, 0.25, 0.25 "
            md += "(emulated as \(mixed.workers.map { String(format: "%.3f", $0.speed) }.joined(separator: ", ")) of one core).\n\n"
            md += "| worker | speed | steps | tokens | alone, tokens/s | waiting |\n|---|---|---|---|---|---|\n"
            var aloneSum = 0.0
            for w in mixed.workers {
                let alone = report.aloneTokensPerSecond[String(format: "%.3f", w.speed)] ?? 0
                aloneSum += alone
                md += String(format: "| %@ | %.3f | %d | %d | %.0f | %.1f s |\n", w.name as NSString, w.speed, w.steps, w.tokens, alone, w.waitSeconds)
            }
            let ratio = mixed.tokensPerSecond / max(aloneSum, 1e-9)
            md += String(format: "\nCluster: %.0f tokens/s; sum of each worker alone (one worker per run at the same emulated speed): %.0f tokens/s; ", mixed.tokensPerSecond, aloneSum)
            md += String(format: "ratio %.1f%% (target ≥ 90%%: %@). Validation loss %.4f.\n", 100 * ratio, ratio >= 0.9 ? "yes" : "no", mixed.validationLoss ?? .nan)
        }
        md += "\nPlots: `validation.svg` (validation loss against training tokens), `bytes.svg` (bytes sent, log scale).\n"
        md += "Each variant's run folder (metrics.jsonl per worker and round, logs) is beside this report.\n"
        return md
    }

    /// File name and SVG text of each plot.
    public func plots(folder: URL) -> [(String, String)] {
        var series: [SVGChart.Series] = []
        for r in report.results {
            let metrics = folder.appendingPathComponent(r.variant).appendingPathComponent("metrics.jsonl")
            guard let text = try? String(contentsOf: metrics, encoding: .utf8) else { continue }
            var points: [(x: Double, y: Double)] = []
            for line in text.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      object["name"] as? String == "worker-0", let v = object["validationLoss"] as? Double, let tokens = object["tokens"] as? Int
                else { continue }
                points.append((Double(tokens * report.workers), v))
            }
            series.append(SVGChart.Series(r.variant, points))
        }
        let lines = SVGChart.lines(title: "validation loss by training tokens (all workers)", xLabel: "tokens", yLabel: "validation loss", series: series)
        let bars = SVGChart.logBars(title: "bytes sent by all workers", values: report.results.map { ($0.variant, Double($0.summary.bytesSent)) })
        return [("validation.svg", lines), ("bytes.svg", bars)]
    }
}
