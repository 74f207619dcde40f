import Basics
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

