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

    /// Applies one step to fragment `fragment` of `fragments` of `parameters` (see `InterleavedFragments`),
    /// whose gradient `gradient` holds in order.
    public mutating func step(parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
                              fragment: Int, of fragments: Int) {
        let layout = InterleavedFragments(count: velocity.count, fragments: fragments)
        precondition(parameters.count == velocity.count && gradient.count == layout.size(of: fragment),
                     "[NesterovSGD] \(parameters.count) parameters, \(gradient.count) gradients of fragment \(fragment) of \(fragments) for \(velocity.count)")
        let (lr, mu) = (learningRate, momentum)
        velocity.withUnsafeMutableBufferPointer { m in
            layout.forEachRun(of: fragment) { values, offset in
                let (m, p, g) = (m.baseAddress! + values.lowerBound, parameters.baseAddress! + values.lowerBound,
                                 gradient.baseAddress! + offset)
                for k in 0..<values.count {
                    m[k] = mu * m[k] + g[k]
                    p[k] -= lr * (g[k] + mu * m[k])
                }
            }
        }
    }
}
