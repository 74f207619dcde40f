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

    /// The SVG document (800×450, axes with ticks, a legend).
    public func svg() -> String {
        let width = 800.0, height = 450.0
        let left = 70.0, right = 20.0, top = 40.0, bottom = 50.0
        let points = (train + validation).filter { $0.loss.isFinite }
        let maxStep = Double(max(1, points.map(\.step).max() ?? 1))
        var lo = Double(points.map(\.loss).min() ?? 0), hi = Double(points.map(\.loss).max() ?? 1)
        if hi - lo < 1e-6 { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.05
        lo -= pad
        hi += pad
        func x(_ step: Int) -> Double { left + Double(step) / maxStep * (width - left - right) }
        func y(_ loss: Float) -> Double { top + (hi - Double(loss)) / (hi - lo) * (height - top - bottom) }
        func path(_ series: [(step: Int, loss: Float)]) -> String {
            series.filter { $0.loss.isFinite }.map { String(format: "%.1f,%.1f", x($0.step), y($0.loss)) }.joined(separator: " ")
        }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
            <text x="\(Int((left + width - right) / 2))" y="\(Int(height - 12))" text-anchor="middle">step</text>
            <text x="16" y="\(Int((top + height - bottom) / 2))" text-anchor="middle" transform="rotate(-90 16 \(Int((top + height - bottom) / 2)))">loss (nats/token)</text>

            """
        for i in 0...5 {
            let step = Int((maxStep * Double(i) / 5).rounded())
            let value = lo + (hi - lo) * Double(i) / 5
            let ty = y(Float(value))
            svg += "<line x1=\"\(x(step))\" y1=\"\(height - bottom)\" x2=\"\(x(step))\" y2=\"\(height - bottom + 5)\" stroke=\"black\"/>"
            svg += "<text x=\"\(x(step))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(step)</text>\n"
            svg += "<line x1=\"\(left - 5)\" y1=\"\(String(format: "%.1f", ty))\" x2=\"\(width - right)\" y2=\"\(String(format: "%.1f", ty))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 8)\" y=\"\(String(format: "%.1f", ty + 4))\" text-anchor=\"end\">\(String(format: "%.2f", value))</text>\n"
        }
        svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(path(train))\"/>\n"
        svg += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"\(path(validation))\"/>\n"
        for p in validation where p.loss.isFinite {
            svg += "<circle cx=\"\(String(format: "%.1f", x(p.step)))\" cy=\"\(String(format: "%.1f", y(p.loss)))\" r=\"3\" fill=\"#d62728\"/>\n"
        }
        svg += """
            <line x1="\(width - 190)" y1="\(top + 10)" x2="\(width - 165)" y2="\(top + 10)" stroke="#1f77b4" stroke-width="2"/>
            <text x="\(width - 160)" y="\(top + 14)">train</text>
            <line x1="\(width - 190)" y1="\(top + 28)" x2="\(width - 165)" y2="\(top + 28)" stroke="#d62728" stroke-width="2"/>
            <text x="\(width - 160)" y="\(top + 32)">validation</text>
            </svg>

            """
        return svg
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
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
