/// DiLoCo's outer optimizer: SGD with Nesterov momentum on the shared parameters, fed the
/// averaged pseudo-gradient (global − local) of a round.
///
/// m ← μ·m + g;  θ ← θ − lr·(g + μ·m)   (the Nesterov form PyTorch's SGD uses)
public struct NesterovSGD: Sendable {
    public let learningRate: Float
    public let momentum: Float
    /// The momentum buffer, one value per parameter.
    public private(set) var velocity: [Float]

    public init(count: Int, learningRate: Float, momentum: Float) {
        self.learningRate = learningRate
        self.momentum = momentum
        velocity = [Float](repeating: 0, count: count)
    }

    /// Puts back a saved momentum buffer (resuming a run); false when its size is wrong.
    public mutating func restore(velocity saved: [Float]) -> Bool {
        guard saved.count == velocity.count else { return false }
        velocity = saved
        return true
    }

    /// Applies one step to `parameters` with gradient `gradient`.
    public mutating func step(parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == velocity.count && gradient.count == velocity.count,
                     "[NesterovSGD] \(parameters.count) parameters, \(gradient.count) gradients for \(velocity.count)")
        let (lr, mu) = (learningRate, momentum)
        velocity.withUnsafeMutableBufferPointer { m in
            for i in 0..<m.count {
                let g = gradient[i]
                m[i] = mu * m[i] + g
                parameters[i] -= lr * (g + mu * m[i])
            }
        }
    }
}
