import Basics
import Foundation

/// A loss curve as a standalone SVG: training loss per step and validation loss where measured.
public struct LossPlot: Sendable {
    public var train: [(step: Int, loss: Float)] = []
    public var validation: [(step: Int, loss: Float)] = []
    public var title: String

    public init(title: String) {
        self.title = title
    }

    /// Adds a step's training loss and, if measured, its validation loss.
    public mutating func add(_ report: StepReport) {
        train.append((report.step, report.loss))
        if let v = report.validationLoss { validation.append((report.step, v)) }
    }

    /// The SVG document (`SVGChart`: 800×450, axes with ticks, a legend).
    public func svg() -> String {
        func points(_ series: [(step: Int, loss: Float)]) -> [(x: Double, y: Double)] { series.map { (Double($0.step), Double($0.loss)) } }
        return SVGChart.lines(title: title, xLabel: "step", yLabel: "loss (nats/token)",
                              series: [SVGChart.Series("train", points(train)), SVGChart.Series("validation", points(validation), markers: true)])
    }
}

/// A run folder's `loss.svg`: redrawn when validation loss is measured, at the end, and at most
/// every 5 seconds otherwise, replaced atomically so a browser never sees half a file.
public struct LossCurveFile: Sendable {
    public let url: URL
    public private(set) var plot: LossPlot
    private var written = Date.distantPast

    public init(folder: URL, plot: LossPlot) {
        url = folder.appendingPathComponent("loss.svg")
        self.plot = plot
    }

    /// Adds a point (and a validation point when measured), then redraws if it is time.
    public mutating func add(step: Int, loss: Float, validationLoss: Float?, final: Bool) throws {
        plot.train.append((step, loss))
        if let validationLoss { plot.validation.append((step, validationLoss)) }
        if validationLoss != nil || final || Date().timeIntervalSince(written) > 5 {
            try Data(plot.svg().utf8).write(to: url, options: .atomic)
            written = Date()
        }
    }
}
