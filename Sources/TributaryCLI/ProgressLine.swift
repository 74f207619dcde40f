import Foundation
import Training

/// Writes training progress to stdout: one rewritten line on a terminal, periodic lines otherwise.
struct ProgressLine {
    let interactive = isatty(STDOUT_FILENO) == 1
    let everyNonInteractive: Int

    init(totalSteps: Int) {
        everyNonInteractive = max(1, totalSteps / 20)
    }

    func show(_ r: StepReport) {
        var text = "step \(r.step)/\(r.totalSteps) | loss \(String(format: "%.4f", r.loss))"
        if let v = r.validationLoss { text += " | val \(String(format: "%.4f", v))" }
        text += " | \(formatCount(r.tokensPerSecond)) tok/s | lr \(String(format: "%.2e", r.learningRate))"
        text += " | ETA \(formatDuration(r.etaSeconds))"
        if interactive {
            print("\r\u{1B}[2K" + text, terminator: r.step == r.totalSteps || r.validationLoss != nil ? "\n" : "")
            fflush(nil)
        } else if r.step % everyNonInteractive == 0 || r.step == r.totalSteps || r.validationLoss != nil {
            print(text)
        }
    }
}

/// 12345.6 → "12,346".
func formatCount(_ value: Double) -> String {
    guard value.isFinite else { return "?" }
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.maximumFractionDigits = 0
    return formatter.string(from: NSNumber(value: value)) ?? "\(Int(value))"
}

/// 3725 → "1h02m05s"; 65 → "1m05s"; 4.2 → "4s".
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
