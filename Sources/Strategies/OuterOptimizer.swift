import Basics

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
        step(parameters: parameters, gradient: gradient, fragment: 0, of: 1)
    }

    /// Applies one step to the interleaved fragment `fragment` of `fragments` of `parameters`
    /// (elements `fragment`, `fragment + fragments`, …), whose gradient `gradient` holds in order.
    public mutating func step(parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
                              fragment: Int, of fragments: Int) {
        precondition(parameters.count == velocity.count
                     && gradient.count == interleavedFragmentSize(count: velocity.count, fragment: fragment, of: fragments),
                     "[NesterovSGD] \(parameters.count) parameters, \(gradient.count) gradients of fragment \(fragment) of \(fragments) for \(velocity.count)")
        let (lr, mu) = (learningRate, momentum)
        velocity.withUnsafeMutableBufferPointer { m in
            for j in 0..<gradient.count {
                let i = fragment + j * fragments
                let g = gradient[j]
                m[i] = mu * m[i] + g
                parameters[i] -= lr * (g + mu * m[i])
            }
        }
    }
}
