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
        md += "as many more or fewer steps (DiLoCo: each of M workers takes batch/M sequences per inner step, H = \(report.innerSteps)). "
        md += "Gap: validation loss"
        md += report.validationSequences.map { " (every cell on the first \($0) sequences of the validation split)" } ?? ""
        md += " against DDP's best run of the same size (either optimizer). Real `tributary local` runs, "
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
        md += shape()
        md += "\n## Targets\n\n" + targets()
        md += "\nDDP's bytes with M workers are (M−1)× those of its measured two-worker run (a ring all-reduce). "
        md += "Plots: `gap-by-workers.svg`, `gap-by-bytes.svg`. Each run's folder (metrics, logs) is beside this report.\n"
        return md
    }

    /// DDP-Muon's best run at DiLoCo's shape (the experiment's global batch and steps), where DDP's best
    /// has another: the part of the gap that the shape costs, and each dense DiLoCo-Muon cell of that
    /// shape measured against it.
    private func shape() -> String {
        var md = ""
        for size in report.sizes.map(\.name) {
            guard let same = report.cells.filter({
                $0.size == size && $0.method == "ddp-muon" && $0.globalBatch == report.globalBatch && $0.steps == report.steps
            }).min(by: { $0.validationLoss < $1.validationLoss }), let sameGap = gap(same), sameGap > 0 else { continue }
            if md.isEmpty { md = "\n## DDP at DiLoCo's shape\n\n" }
            md += "- \(size): DDP-Muon with DiLoCo's global batch (\(report.globalBatch) × \(report.steps)) ends at "
            md += String(format: "%.4f, %+.2f%% against DDP's best: the part of every gap below that the shape costs. ",
                         same.validationLoss, sameGap)
            let dense = bestCells.filter {
                $0.size == size && $0.method == "diloco-muon" && $0.globalBatch == report.globalBatch && $0.steps == report.steps
            }
            md += "DiLoCo-Muon of that shape against it: " + dense.map {
                String(format: "M=%d %+.2f%%", $0.workers, ($0.validationLoss / same.validationLoss - 1) * 100)
            }.joined(separator: ", ") + ".\n"
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
            line("\(size), M=1 DiLoCo at least as good as DDP (\(percent(solo.flatMap(gap))))", solo.flatMap(gap).map { $0 <= 0 })
            for (m, bound) in [(4, 2.0), (8, 4.0)] {
                let frugal = dilocos.filter { $0.size == size && $0.workers == m && (fewerBytes($0) ?? 0) >= 500 }
                let best = frugal.min { (gap($0) ?? .infinity) < (gap($1) ?? .infinity) }
                let what = best.map { "\($0.method), \(percent(gap($0))) at \(String(format: "%.0f", fewerBytes($0) ?? 0))× fewer bytes" }
                line("\(size), M=\(m) within \(Int(bound))% of DDP at ≥500× fewer bytes (\(what ?? "no run at ≥500×"))",
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
