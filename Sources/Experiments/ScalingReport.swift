import Basics
import Foundation

/// The markdown report and SVG plots of `experiment scaling`.
public struct ScalingReport {
    public let report: ScalingExperiment.Report
    public typealias Cell = ScalingExperiment.Cell

    public init(report: ScalingExperiment.Report) {
        self.report = report
    }

    /// DDP's best run of a size, with either inner optimizer: the reference every gap is measured against.
    public func ddp(_ size: String) -> Cell? {
        report.cells.filter { $0.size == size && $0.method.hasPrefix("ddp") }.min { $0.validationLoss < $1.validationLoss }
    }

    /// Plain training of a size: one worker at DDP's best settings (reports since session 19).
    public func plain(_ size: String) -> Cell? {
        report.cells.first { $0.size == size && $0.method.hasPrefix("plain") }
    }

    /// Validation loss relative to DDP's best, in percent.
    public func gap(_ cell: Cell) -> Double? {
        ddp(cell.size).map { (cell.validationLoss / $0.validationLoss - 1) * 100 }
    }

    /// What DDP's best run would send with `workers` workers: a ring all-reduce moves 2(M−1)/M of
    /// the vector per worker and step, so all workers together send (M−1)× what two send.
    public func ddpBytes(_ size: String, workers: Int) -> Int? {
        ddp(size).map { $0.bytesSent * (workers - 1) }
    }

    /// How many times fewer bytes than DDP with the same workers (nil for one worker).
    public func fewerBytes(_ cell: Cell) -> Double? {
        guard cell.workers > 1, let reference = ddpBytes(cell.size, workers: cell.workers) else { return nil }
        return Double(reference) / Double(max(cell.bytesSent, 1))
    }

    /// The best run of each (size, method, workers): the sweep's winner.
    public var bestCells: [Cell] {
        let groups = Dictionary(grouping: report.cells) { "\($0.size)|\($0.method)|\($0.workers)" }
        return groups.values.map { $0.min { $0.validationLoss < $1.validationLoss }! }
            .sorted { ($0.size, $0.method, $0.workers) < ($1.size, $1.method, $1.workers) }
    }

    public func markdown() -> String {
        let tokens = report.steps * report.globalBatch * report.sequenceLength
        var md = "# DiLoCo against DDP by workers and model size\(report.quick ? " (quick)" : "")\n\n"
        md += "Every cell trains on the same \(formatCount(Double(tokens))) tokens of the fortunes corpus: a global batch of "
        md += "\(report.globalBatch)×\(report.sequenceLength) tokens for \(report.steps) steps, or a batch sweep's other batch for "
        md += "as many more or fewer steps (DiLoCo: each of M workers takes batch/M sequences per inner step, in rounds of as many "
        md += "tokens as H = \(report.innerSteps) steps of \(report.globalBatch) sequences; since session 18 its batch and inner "
        md += "learning rate grow with M from DDP's best as the scaling-law paper's fits have them, batch ∝ M^0.34 and lr ∝ M^0.29). "
        md += "Gap: validation loss"
        md += report.validationSequences.map { " (every cell on the first \($0) sequences of the validation split)" } ?? ""
        md += " against DDP's best run of the same size (either optimizer)."
        if report.cells.contains(where: { $0.method.hasPrefix("plain") }) {
            md += " `plain`: one worker at DDP's best optimizer, batch and learning rate (plain training, nothing sent), "
            md += "what the M=1 target compares with."
        }
        md += " Real `tributary local` runs, "
        md += "unlimited links. Wall time \(formatDuration(report.wallSeconds)).\n\n"
        for size in report.sizes {
            md += "- \(size.name): \(formatCount(Double(size.parameters))) parameters (\(size.model.layers) layers, "
            md += "\(size.model.channels) channels, \(size.model.heads) heads, vocabulary \(size.model.vocabSize))\n"
        }
        md += "\n## Best run of each cell\n\n"
        md += "| size | method | M | batch × steps | outer lr / momentum | validation loss | gap vs DDP | bytes sent (all workers) | "
        md += "fewer bytes than DDP |\n|---|---|---|---|---|---|---|---|---|\n"
        for c in bestCells {
            let outer = c.outerLearningRate.map { String(format: "%.2f / %.2f", $0, c.outerMomentum ?? 0) } ?? "–"
            let fewer = fewerBytes(c).map { String(format: "%.0f×", $0) } ?? "–"
            md += "| \(c.size) | \(c.method) | \(c.workers) | \(c.globalBatch) × \(c.steps) | \(outer) | \(String(format: "%.4f", c.validationLoss)) | "
            md += "\(gap(c).map { String(format: "%+.2f%%", $0) } ?? "–") | \(formatBytes(c.bytesSent)) | \(fewer) |\n"
        }
        md += "\n## Every run (the sweeps)\n\n| run | validation loss | gap | wall |\n|---|---|---|---|\n"
        for c in report.cells {
            md += "| \(c.folder) | \(String(format: "%.4f", c.validationLoss)) | \(gap(c).map { String(format: "%+.2f%%", $0) } ?? "–") | "
            md += "\(formatDuration(c.wallSeconds)) |\n"
        }
        md += publishedTrend()
        md += "\n## Targets\n\n" + targets()
        md += "\nDDP's bytes with M workers are (M−1)× those of its measured two-worker run (a ring all-reduce). "
        md += "Plots: `gap-by-workers.svg`, `gap-by-bytes.svg`. Each run's folder (metrics, logs) is beside this report.\n"
        return md
    }

    /// Each size's best dense DiLoCo gap per M beside what the scaling-law paper's fits predict at
    /// its parameter count (`DiLoCoScalingLaws`).
    private func publishedTrend() -> String {
        let dense = bestCells.filter { Self.isDense($0.method) }
        let workers = dense.map(\.workers).uniqued().sorted()
        guard !workers.isEmpty else { return "" }
        var md = "\n## Against the published trend\n\n"
        md += "The DiLoCo scaling-law paper's power-law fits of the loss of DP and of each M (arXiv 2503.09799, Table 7: "
        md += "35M–2.4B parameters, H = 30, 20 tokens per parameter, tuned batches) extrapolated to these sizes, beside "
        let tokens = Double(report.steps * report.globalBatch * report.sequenceLength)
        md += "the best dense DiLoCo run of each M here (\(formatCount(tokens)) tokens).\n\n"
        md += "| size | parameters | tokens per parameter |" + workers.map { " M=\($0) here / trend |" }.joined() + "\n"
        md += "|---|---|---|" + String(repeating: "---|", count: workers.count) + "\n"
        for size in report.sizes {
            let n = Double(size.parameters)
            md += "| \(size.name) | \(formatCount(n)) | \(String(format: "%.2f", tokens / n)) |"
            for m in workers {
                let here = dense.filter { $0.size == size.name && $0.workers == m }.compactMap(gap).min()
                let trend = DiLoCoScalingLaws.gap(parameters: n, workers: m)
                md += " \(here.map { String(format: "%+.2f%%", $0) } ?? "–") / \(trend.map { String(format: "%+.2f%%", $0) } ?? "–") |"
            }
            md += "\n"
        }
        return md
    }

    private func targets() -> String {
        var md = ""
        func line(_ text: String, _ met: Bool?) { md += "- \(text): \(met.map { $0 ? "**met**" : "**not met**" } ?? "not measured")\n" }
        func percent(_ x: Double?) -> String { x.map { String(format: "%+.2f%%", $0) } ?? "–" }
        let dilocos = bestCells.filter { $0.method.hasPrefix("diloco") }
        for size in report.sizes.map(\.name) {
            // Dense DiLoCo with either inner optimizer: the best of them is the recipe.
            let solo = dilocos.filter { $0.size == size && $0.workers == 1 && Self.isDense($0.method) }
                .min { $0.validationLoss < $1.validationLoss }
            if let plain = plain(size) {
                let behind = solo.map { ($0.validationLoss / plain.validationLoss - 1) * 100 }
                line("\(size), M=1 DiLoCo at least as good as plain training (\(percent(behind)) against one worker at DDP's best "
                     + "settings; \(percent(solo.flatMap(gap))) against DDP's best)", behind.map { $0 <= 0 })
            } else {
                line("\(size), M=1 DiLoCo at least as good as DDP (\(percent(solo.flatMap(gap))))", solo.flatMap(gap).map { $0 <= 0 })
            }
            for (m, bound) in [(4, 2.0), (8, 4.0)] {
                let frugal = dilocos.filter { $0.size == size && $0.workers == m && (fewerBytes($0) ?? 0) >= 500 }
                let best = frugal.min { (gap($0) ?? .infinity) < (gap($1) ?? .infinity) }
                let what = best.map { "\($0.method), \(percent(gap($0))) at \(String(format: "%.0f", fewerBytes($0) ?? 0))× fewer bytes" }
                let trend = report.sizes.first { $0.name == size }.flatMap {
                    DiLoCoScalingLaws.gap(parameters: Double($0.parameters), workers: m)
                }.map { String(format: "; the published trend at this size: %+.1f%% at any bytes", $0) } ?? ""
                line("\(size), M=\(m) within \(Int(bound))% of DDP at ≥500× fewer bytes (\(what ?? "no run at ≥500×")\(trend))",
                     best.flatMap(gap).map { $0 <= bound })
            }
            for m in report.cells.filter({ $0.size == size }).map(\.workers).uniqued() {
                for c in dilocos where c.size == size && c.workers == m && (fewerBytes(c) ?? 0) >= 1000 {
                    // The dense variant of the same recipe: the method without its codec.
                    let denseMethod = c.method.replacingOccurrences(of: "-topk", with: "").replacingOccurrences(of: "-int4", with: "")
                    guard let dense = dilocos.first(where: { $0.size == size && $0.method == denseMethod && $0.workers == m }),
                          let denseGap = gap(dense) else { continue }
                    let g = gap(c) ?? .infinity
                    line("\(size), M=\(m) \(c.method) at \(String(format: "%.0f", fewerBytes(c)!))× within 1 point of dense DiLoCo's gap "
                         + "(\(percent(g)) vs \(percent(denseGap)))", g <= denseGap + 1)
                }
            }
        }
        return md
    }

    /// Whether a DiLoCo method sends its pseudo-gradients whole, in fp32, every round.
    static func isDense(_ method: String) -> Bool { method == "diloco" || method == "diloco-muon" }

    /// File name and SVG text of each plot.
    public func plots() -> [(String, String)] {
        let groups = Dictionary(grouping: bestCells.filter { $0.method.hasPrefix("diloco") }) { "\($0.size) \($0.method)" }
        let byWorkers = groups.keys.sorted().map { key in
            SVGChart.Series(key, groups[key]!.compactMap { c in gap(c).map { (Double(c.workers), $0) } }, markers: true)
        }
        let byBytes = groups.keys.sorted().map { key in
            SVGChart.Series(key, groups[key]!.filter { $0.workers > 1 }.compactMap { c in
                gap(c).map { (log10(Double(max(c.bytesSent, 1))), $0) }
            }.sorted { $0.0 < $1.0 }, markers: true)
        }
        return [
            ("gap-by-workers.svg", SVGChart.lines(title: "validation loss vs DDP (%) by workers", xLabel: "workers M",
                                                  yLabel: "gap (%)", series: byWorkers)),
            ("gap-by-bytes.svg", SVGChart.lines(title: "validation loss vs DDP (%) by bytes sent", xLabel: "log10 bytes (all workers)",
                                                yLabel: "gap (%)", series: byBytes)),
        ]
    }
}

extension Sequence where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
