import Foundation

/// Hyper-parameters of one AdamW update.
public struct AdamWStep: Sendable {
    /// Learning rate for this step.
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    /// Decoupled weight decay; 0 for tensors that are not decayed.
    public var weightDecay: Float
    /// 1-based step number, for bias correction.
    public var step: Int
    /// Multiplies every gradient first (global-norm clipping, loss scaling).
    public var gradientScale: Float

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8,
                weightDecay: Float = 0, step: Int, gradientScale: Float = 1) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.step = step
        self.gradientScale = gradientScale
    }
}

/// AdamW (decoupled decay, as in PyTorch) over `count` parameters; updates params, m and v in place.
///
/// p ← p − lr·wd·p; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// p ← p − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε), with g = gradientScale·grad.
public func adamWUpdate(
    params: UnsafeMutablePointer<Float>,
    grads: UnsafePointer<Float>,
    m: UnsafeMutablePointer<Float>,
    v: UnsafeMutablePointer<Float>,
    count: Int,
    hyper h: AdamWStep,
    parallelism: Parallelism
) {
    parallelism.run(count, grain: 16384, alignment: 16, AdamWRange(params: params, grads: grads, m: m, v: v, hyper: h))
}

struct AdamWRange: ParallelWork {
    let params: UnsafeMutablePointer<Float>
    let grads: UnsafePointer<Float>
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let hyper: AdamWStep

    func run(_ r: Range<Int>) {
        let h = hyper
        let c1 = 1 - powf(h.beta1, Float(h.step))
        let c2 = 1 - powf(h.beta2, Float(h.step))
        let lr = h.learningRate
        let decay = 1 - lr * h.weightDecay
        var i = r.lowerBound
        let b1 = FloatVector(repeating: h.beta1), b2 = FloatVector(repeating: h.beta2)
        let ob1 = FloatVector(repeating: 1 - h.beta1), ob2 = FloatVector(repeating: 1 - h.beta2)
        let gs = FloatVector(repeating: h.gradientScale)
        let ic1 = FloatVector(repeating: 1 / c1), ic2 = FloatVector(repeating: 1 / c2)
        let lrv = FloatVector(repeating: lr), dv = FloatVector(repeating: decay)
        let ev = FloatVector(repeating: h.epsilon)
        while i &+ 16 <= r.upperBound {
            let g = loadVector(grads + i) * gs
            let mi = (ob1 * g).addingProduct(b1, loadVector(m + i))
            let vi = (ob2 * g * g).addingProduct(b2, loadVector(v + i))
            storeVector(mi, m + i)
            storeVector(vi, v + i)
            let update = (mi * ic1) / (vectorSqrt(vi * ic2) + ev)
            storeVector((loadVector(params + i) * dv) - lrv * update, params + i)
            i &+= 16
        }
        while i < r.upperBound {
            let g = grads[i] * h.gradientScale
            let mi = h.beta1 * m[i] + (1 - h.beta1) * g
            let vi = h.beta2 * v[i] + (1 - h.beta2) * g * g
            m[i] = mi
            v[i] = vi
            params[i] = params[i] * decay - lr * ((mi * (1 / c1)) / ((vi * (1 / c2)).squareRoot() + h.epsilon))
            i &+= 1
        }
    }
}
