import TensorCore

/// Activations the forward pass keeps for backward, and the scratch the backward pass reuses,
/// sized once for the largest batch so that a training step allocates nothing.
final class ActivationBuffers {
    let slab: FloatSlab
    let maxRows: Int

    // Offsets (in elements) into `slab`, per layer where the name says so.
    let encoded: Int
    let ln1: [Int], ln1Mean: [Int], ln1Rstd: [Int]
    let qkv: [Int], atty: [Int], att: [Int], residual2: [Int]
    let ln2: [Int], ln2Mean: [Int], ln2Rstd: [Int]
    let fch: [Int], fchGelu: [Int], residual3: [Int]
    let lnf: Int, lnfMean: Int, lnfRstd: Int
    let logits: Int, losses: Int
    let dResidual: Int, dWidth1: Int, dWidth3: Int, dWidth4: Int, dAttention: Int

    init(config: GPTConfig, maxBatch: Int, maxLength: Int, parallelism: Parallelism) {
        let bt = maxBatch * maxLength
        let c = config.channels
        var next = 0
        func take(_ n: Int) -> Int {
            defer { next += (n + 15) / 16 * 16 } // keep every buffer 64-byte aligned
            return next
        }
        func perLayer(_ n: Int) -> [Int] { (0..<config.layers).map { _ in take(n) } }
        encoded = take(bt * c)
        ln1 = perLayer(bt * c); ln1Mean = perLayer(bt); ln1Rstd = perLayer(bt)
        qkv = perLayer(bt * 3 * c); atty = perLayer(bt * c)
        att = perLayer(maxBatch * config.heads * maxLength * maxLength)
        residual2 = perLayer(bt * c)
        ln2 = perLayer(bt * c); ln2Mean = perLayer(bt); ln2Rstd = perLayer(bt)
        fch = perLayer(bt * 4 * c); fchGelu = perLayer(bt * 4 * c); residual3 = perLayer(bt * c)
        lnf = take(bt * c); lnfMean = take(bt); lnfRstd = take(bt)
        logits = take(bt * config.vocabSize); losses = take(bt)
        dResidual = take(bt * c); dWidth1 = take(bt * c); dWidth3 = take(bt * 3 * c)
        dWidth4 = take(bt * 4 * c); dAttention = take(attentionBackwardScratchCount(length: maxLength, parallelism: parallelism))
        slab = FloatSlab(count: next)
        maxRows = bt
    }

    @inline(__always)
    func at(_ offset: Int) -> UnsafeMutablePointer<Float> { slab.base + offset }
}
