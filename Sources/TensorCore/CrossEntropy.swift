import Foundation

/// Softmax cross-entropy, in place: turns logits (N,V) into probabilities and writes losses (N).
///
/// `targets` holds N class ids below V. The caller averages the losses.
public func crossEntropyForward(
    losses: UnsafeMutablePointer<Float>,
    logitsToProbs: UnsafeMutablePointer<Float>,
    targets: UnsafePointer<Int32>,
    rows n: Int, vocab v: Int,
    parallelism: Parallelism
) {
    parallelism.run(n, SoftmaxCrossEntropyRows(losses: losses, probs: logitsToProbs, targets: targets, vocab: v))
}

struct SoftmaxCrossEntropyRows: ParallelWork {
    let losses: UnsafeMutablePointer<Float>
    let probs: UnsafeMutablePointer<Float>
    let targets: UnsafePointer<Int32>
    let vocab: Int

    func run(_ rows: Range<Int>) {
        for row in rows {
            let p = probs + row &* vocab
            softmaxRow(p, count: vocab)
            losses[row] = -logf(max(p[Int(targets[row])], Float.leastNormalMagnitude))
        }
    }
}

/// Backward of `crossEntropyForward` with loss = scale·Σ losses: turns probs (N,V) into dlogits in
/// place, dlogits = scale·(probs − onehot(target)).
public func crossEntropyBackward(
    probsToDlogits: UnsafeMutablePointer<Float>,
    targets: UnsafePointer<Int32>,
    scale lossScale: Float,
    rows n: Int, vocab v: Int,
    parallelism: Parallelism
) {
    parallelism.run(n, CrossEntropyBackwardRows(probs: probsToDlogits, targets: targets, scale: lossScale, vocab: v))
}

struct CrossEntropyBackwardRows: ParallelWork {
    let probs: UnsafeMutablePointer<Float>
    let targets: UnsafePointer<Int32>
    let scale: Float
    let vocab: Int

    func run(_ rows: Range<Int>) {
        for row in rows {
            let p = probs + row &* vocab
            p[Int(targets[row])] -= 1
            VectorScale(x: p, factor: scale).run(0..<vocab)
        }
    }
}

/// In-place softmax of one row of `count` values.
@inline(__always)
public func softmaxRow(_ p: UnsafeMutablePointer<Float>, count v: Int) {
    var mv = FloatVector(repeating: -Float.greatestFiniteMagnitude)
    var i = 0
    while i &+ 16 <= v {
        mv = vectorMax(mv, loadVector(p + i))
        i &+= 16
    }
    var maxValue = mv.max()
    while i < v {
        maxValue = max(maxValue, p[i])
        i &+= 1
    }
    let m = FloatVector(repeating: maxValue)
    var acc = FloatVector(repeating: 0)
    i = 0
    while i &+ 16 <= v {
        let e = vectorExp(loadVector(p + i) - m)
        storeVector(e, p + i)
        acc += e
        i &+= 16
    }
    var tail: Float = 0
    while i < v {
        let e = expf(p[i] - maxValue)
        p[i] = e
        tail += e
        i &+= 1
    }
    let inv = 1 / (acc.sum() + tail)
    let iv = FloatVector(repeating: inv)
    i = 0
    while i &+ 16 <= v {
        storeVector(loadVector(p + i) * iv, p + i)
        i &+= 16
    }
    while i < v {
        p[i] *= inv
        i &+= 1
    }
}
