import Foundation

/// Linear warm-up to the peak rate, then cosine decay to `minRatio`·peak at the last step.
public struct LearningRateSchedule: Sendable, Equatable {
    public let peak: Float
    public let minRatio: Float
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(peak: Float, minRatio: Float, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.minRatio = minRatio
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The rate for 0-based `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let decaySteps = max(1, totalSteps - 1 - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(decaySteps))
        let cosine = 0.5 * (1 + cos(Double.pi * progress))
        let floor = peak * minRatio
        return floor + (peak - floor) * Float(cosine)
    }
}
