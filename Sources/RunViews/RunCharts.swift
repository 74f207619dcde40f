import Basics
import Coordination
import Foundation

/// The charts of a run, drawn from its history as standalone SVG: the same pictures on the live
/// dashboard and in `tributary report`'s page. Time runs from the first report, in seconds for
/// runs under three minutes and in minutes after.
public struct RunCharts: Sendable {
    public var loss: String
    public var throughput: String
    public var bytes: String
    public var utilisation: String

    /// Points a chart line keeps at most; longer runs are drawn at a coarser grain.
    static let maxPoints = 400

    public init(_ history: RunHistory) {
        let byWorker = Dictionary(grouping: history.reports, by: \.report.name)
        let names = byWorker.keys.sorted()
        let t0 = history.reports.compactMap(\.receivedAt).min()
        // A report's time on the shared axis: when the coordinator got it (older lines without
        // it fall back to the worker's own clock), in minutes unless the run is short.
        func seconds(_ r: RecordedReport) -> Double { (r.receivedAt.map { $0 - (t0 ?? $0) }) ?? r.report.elapsedSeconds }
        let span = history.reports.map(seconds).max() ?? 0
        let (unit, timeLabel) = span < 180 ? (1.0, "seconds") : (60.0, "minutes")
        func time(_ r: RecordedReport) -> Double { seconds(r) / unit }
        func perWorker(_ value: (RecordedReport, RecordedReport) -> Double?) -> [SVGChart.Series] {
            names.map { name in
                let rs = byWorker[name]!
                let points = zip(rs, rs.dropFirst()).compactMap { a, b in value(a, b).map { (x: time(b), y: $0) } }
                return SVGChart.Series(name, Self.thinned(points))
            }
        }
        /// A counter's rate over a round, in the worker's own elapsed time (nil across a restart).
        func rate(_ counter: @escaping (WorkerReport) -> Double) -> (RecordedReport, RecordedReport) -> Double? {
            { a, b in
                let dt = b.report.elapsedSeconds - a.report.elapsedSeconds, dv = counter(b.report) - counter(a.report)
                return dt > 0 && dv >= 0 ? dv / dt : nil
            }
        }

        var lossSeries = names.map { name in
            SVGChart.Series("\(name) train", Self.thinned(byWorker[name]!.map { (x: time($0), y: $0.report.loss) }))
        }
        // Validation loss is of the shared model, the same on every worker: one point per round.
        var seen = Set<Int>()
        let validation = history.reports.compactMap { r -> (x: Double, y: Double)? in
            guard let v = r.report.validationLoss, seen.insert(r.report.round).inserted else { return nil }
            return (time(r), v)
        }
        if !validation.isEmpty { lossSeries.append(SVGChart.Series("validation (shared)", Self.thinned(validation), markers: true)) }
        loss = SVGChart.lines(title: "loss", xLabel: timeLabel, yLabel: "loss (nats/token)", series: lossSeries)

        throughput = SVGChart.lines(title: "throughput per worker", xLabel: timeLabel, yLabel: "tokens per second",
                                    series: perWorker(rate { Double($0.tokens) }))

        var bytesSeries = perWorker(rate { Double($0.bytesSent) * 8 / 1e6 })
        let links = Set(history.reports.compactMap(\.report.linkBytesPerSecond))
        if let link = links.max() {
            // The emulated link every worker sends through: what the sent rate is measured against.
            let mbit = link * 8 / 1e6
            bytesSeries.append(SVGChart.Series(String(format: "link %.0f Mbit/s", mbit), [(0, mbit), (span / unit, mbit)]))
        }
        bytes = SVGChart.lines(title: "sent per worker, mean over each round", xLabel: timeLabel, yLabel: "Mbit/s",
                               series: bytesSeries)

        utilisation = SVGChart.lines(title: "share of time computing", xLabel: timeLabel, yLabel: "% of each round",
                                     series: perWorker { a, b in rate { $0.computeSeconds * 100 }(a, b).map { min($0, 100) } })
    }

    /// Every chart with its name, in the order pages show them.
    public var all: [(name: String, svg: String)] {
        [("loss", loss), ("throughput", throughput), ("bytes", bytes), ("utilisation", utilisation)]
    }

    /// Every chart's SVG by its name.
    public var byName: [String: String] { Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0.svg) }) }

    static func thinned(_ points: [(x: Double, y: Double)]) -> [(x: Double, y: Double)] {
        guard points.count > maxPoints else { return points }
        let stride = (points.count + maxPoints - 1) / maxPoints
        return points.enumerated().filter { $0.offset % stride == 0 || $0.offset == points.count - 1 }.map(\.element)
    }
}
