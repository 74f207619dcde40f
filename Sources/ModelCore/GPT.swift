import TensorCore

/// A GPT-2 model with explicit forward and backward passes over flat parameter and gradient slabs.
///
/// Not thread-safe: one training thread drives it; the kernels it calls fan out internally.
public final class GPT {
    /// The model's shape.
    public let config: GPTConfig
    /// Where each named tensor lives inside `parameters` and `gradients`.
    public let layout: ParameterLayout
    /// All parameters, in `layout` order.
    public let parameters: FloatSlab
    /// Gradients, same layout; `backward` accumulates into them.
    public let gradients: FloatSlab
    /// Largest batch the activation buffers hold.
    public let maxBatch: Int
    /// Longest sequence the activation buffers hold (≤ contextLength).
    public let maxLength: Int
    /// Threads every kernel, matrix products included, splits its work across.
    public let parallelism: Parallelism

    private let acts: ActivationBuffers
    private let tokens: UnsafeMutablePointer<Int32>
    private let targets: UnsafeMutablePointer<Int32>
    private let offsets: LayerOffsets
    private var batch = 0, length = 0, haveLoss = false

    /// Builds a model with zeroed parameters and buffers for batches up to `maxBatch`×`maxLength`.
    ///
    /// Switches OpenBLAS to caller-thread mode (`BLAS.useCallerThreadOnly`): the model's kernels
    /// split matrix products across `parallelism` themselves.
    public init(config: GPTConfig, maxBatch: Int, maxLength: Int, parallelism: Parallelism = .serial) throws {
        try config.validate()
        guard maxBatch > 0 else { throw ModelError.invalidConfig(field: "batchSize", reason: "must be positive, got \(maxBatch)") }
        guard maxLength > 0, maxLength <= config.contextLength else {
            throw ModelError.invalidConfig(
                field: "sequenceLength", reason: "must be in 1...\(config.contextLength) (the context length), got \(maxLength)")
        }
        BLAS.useCallerThreadOnly()
        self.config = config
        self.layout = ParameterLayout(config: config)
        self.parameters = FloatSlab(count: layout.count)
        self.gradients = FloatSlab(count: layout.count)
        self.maxBatch = maxBatch
        self.maxLength = maxLength
        self.parallelism = parallelism
        self.acts = ActivationBuffers(config: config, maxBatch: maxBatch, maxLength: maxLength, parallelism: parallelism)
        self.tokens = .allocate(capacity: maxBatch * maxLength)
        self.targets = .allocate(capacity: maxBatch * maxLength)
        self.offsets = LayerOffsets(layout: layout, layers: config.layers)
    }

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }

    /// GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/√(2L), zero biases,
    /// unit LayerNorm gains. Deterministic in `seed`.
    public func initializeParameters(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let residualScale = 1 / Float(2 * config.layers).squareRoot()
        for t in layout.tensors {
            let p = parameters.pointer(at: t.offset)
            if t.name.hasSuffix("ln_1.weight") || t.name.hasSuffix("ln_2.weight") || t.name == "ln_f.weight" {
                p.update(repeating: 1, count: t.count)
            } else if t.shape.count == 1 {
                p.update(repeating: 0, count: t.count)
            } else {
                let std: Float = t.name.hasSuffix("c_proj.weight") ? 0.02 * residualScale : 0.02
                for i in 0..<t.count { p[i] = rng.nextNormal() * std }
            }
        }
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { gradients.zero() }

    /// Logits (B,T,V) of the last forward pass that had no targets.
    public var logits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts.at(acts.logits), count: batch * length * config.vocabSize)
    }

    /// Runs the model on `tokens` (B,T). With `targets` (B,T) returns the mean cross-entropy and
    /// prepares `backward`; without, leaves the logits in `logits` and returns nil.
    @discardableResult
    public func forward(
        tokens input: UnsafeBufferPointer<Int32>, targets target: UnsafeBufferPointer<Int32>?,
        batch b: Int, length t: Int
    ) throws -> Float? {
        guard b <= maxBatch, t <= maxLength, b > 0, t > 0 else {
            throw ModelError.batchTooLarge(batch: b, length: t, maxBatch: maxBatch, maxLength: maxLength)
        }
        precondition(input.count == b * t, "[GPT.forward] \(input.count) tokens for a \(b)x\(t) batch")
        let v = config.vocabSize
        for i in 0..<(b * t) where input[i] < 0 || Int(input[i]) >= v {
            throw ModelError.tokenOutOfRange(position: i, token: input[i], vocabSize: v)
        }
        tokens.update(from: input.baseAddress!, count: b * t)
        if let target {
            precondition(target.count == b * t, "[GPT.forward] \(target.count) targets for a \(b)x\(t) batch")
            for i in 0..<(b * t) where target[i] < 0 || Int(target[i]) >= v {
                throw ModelError.tokenOutOfRange(position: i, token: target[i], vocabSize: v)
            }
            targets.update(from: target.baseAddress!, count: b * t)
        }
        batch = b
        length = t
        haveLoss = false
        runForward()
        guard target != nil else { return nil }
        crossEntropyForward(losses: acts.at(acts.losses), logitsToProbs: acts.at(acts.logits), targets: targets,
                            rows: b * t, vocab: v, parallelism: parallelism)
        haveLoss = true
        var total: Double = 0
        let losses = acts.at(acts.losses)
        for i in 0..<(b * t) { total += Double(losses[i]) }
        return Float(total / Double(b * t))
    }

    private func runForward() {
        let (b, t, c, nh) = (batch, length, config.channels, config.heads)
        let n = b * t
        let p = parameters.base
        let par = parallelism
        encoderForward(out: acts.at(acts.encoded), tokens: tokens, wte: p + offsets.wte, wpe: p + offsets.wpe,
                       batch: b, length: t, channels: c, parallelism: par)
        for l in 0..<config.layers {
            let w = offsets.layers[l]
            let x = layerInput(l)
            let res2 = acts.at(acts.residual2[l]), res3 = acts.at(acts.residual3[l])
            layerNormForward(out: acts.at(acts.ln1[l]), mean: acts.at(acts.ln1Mean[l]), rstd: acts.at(acts.ln1Rstd[l]),
                             inp: x, weight: p + w.ln1Weight, bias: p + w.ln1Bias, rows: n, channels: c, parallelism: par)
            matmulForward(out: acts.at(acts.qkv[l]), inp: acts.at(acts.ln1[l]), weight: p + w.qkvWeight, bias: p + w.qkvBias,
                          rows: n, inChannels: c, outChannels: 3 * c, parallelism: par)
            attentionForward(out: acts.at(acts.atty[l]), att: acts.at(acts.att[l]), qkv: acts.at(acts.qkv[l]),
                             batch: b, length: t, channels: c, heads: nh, parallelism: par)
            matmulForward(out: res2, inp: acts.at(acts.atty[l]), weight: p + w.projWeight, bias: p + w.projBias,
                          rows: n, inChannels: c, outChannels: c, parallelism: par)
            residualForward(out: res2, a: res2, b: x, count: n * c, parallelism: par)
            layerNormForward(out: acts.at(acts.ln2[l]), mean: acts.at(acts.ln2Mean[l]), rstd: acts.at(acts.ln2Rstd[l]),
                             inp: res2, weight: p + w.ln2Weight, bias: p + w.ln2Bias, rows: n, channels: c, parallelism: par)
            matmulForward(out: acts.at(acts.fch[l]), inp: acts.at(acts.ln2[l]), weight: p + w.fcWeight, bias: p + w.fcBias,
                          rows: n, inChannels: c, outChannels: 4 * c, parallelism: par)
            geluForward(out: acts.at(acts.fchGelu[l]), inp: acts.at(acts.fch[l]), count: n * 4 * c, parallelism: par)
            matmulForward(out: res3, inp: acts.at(acts.fchGelu[l]), weight: p + w.fcProjWeight, bias: p + w.fcProjBias,
                          rows: n, inChannels: 4 * c, outChannels: c, parallelism: par)
            residualForward(out: res3, a: res3, b: res2, count: n * c, parallelism: par)
        }
        layerNormForward(out: acts.at(acts.lnf), mean: acts.at(acts.lnfMean), rstd: acts.at(acts.lnfRstd),
                         inp: layerInput(config.layers), weight: p + offsets.lnfWeight, bias: p + offsets.lnfBias,
                         rows: n, channels: c, parallelism: par)
        matmulForward(out: acts.at(acts.logits), inp: acts.at(acts.lnf), weight: p + offsets.wte, bias: nil,
                      rows: n, inChannels: c, outChannels: config.vocabSize, parallelism: par)
    }

    /// The residual stream entering block `l` (or leaving the last block when l == layers).
    private func layerInput(_ l: Int) -> UnsafeMutablePointer<Float> {
        l == 0 ? acts.at(acts.encoded) : acts.at(acts.residual3[l - 1])
    }

    /// Accumulates into `gradients` the gradient of `lossScale` × the mean loss of the last forward.
    ///
    /// Use `lossScale` = 1/k to average over k accumulated micro-batches. Consumes the probabilities
    /// of the forward pass, so it can run once per forward.
    public func backward(lossScale: Float = 1) throws {
        guard haveLoss else { throw ModelError.backwardWithoutLoss }
        haveLoss = false
        let (b, t, c, nh, v) = (batch, length, config.channels, config.heads, config.vocabSize)
        let n = b * t
        let p = parameters.base, g = gradients.base
        let par = parallelism
        let dres = acts.at(acts.dResidual), d1 = acts.at(acts.dWidth1)
        let d3 = acts.at(acts.dWidth3), d4 = acts.at(acts.dWidth4)
        let dlogits = acts.at(acts.logits)

        crossEntropyBackward(probsToDlogits: dlogits, targets: targets, scale: lossScale / Float(n),
                             rows: n, vocab: v, parallelism: par)
        d1.update(repeating: 0, count: n * c)
        matmulBackward(dinp: d1, dweight: g + offsets.wte, dbias: nil, dout: dlogits, inp: acts.at(acts.lnf),
                       weight: p + offsets.wte, rows: n, inChannels: c, outChannels: v, parallelism: par)
        dres.update(repeating: 0, count: n * c)
        layerNormBackward(dinp: dres, dweight: g + offsets.lnfWeight, dbias: g + offsets.lnfBias, dout: d1,
                          inp: layerInput(config.layers), weight: p + offsets.lnfWeight,
                          mean: acts.at(acts.lnfMean), rstd: acts.at(acts.lnfRstd), rows: n, channels: c, parallelism: par)
        for l in stride(from: config.layers - 1, through: 0, by: -1) {
            let w = offsets.layers[l]
            let x = layerInput(l)
            // dres holds d(residual3) = d(residual2) through the skip connection.
            d4.update(repeating: 0, count: n * 4 * c)
            matmulBackward(dinp: d4, dweight: g + w.fcProjWeight, dbias: g + w.fcProjBias, dout: dres,
                           inp: acts.at(acts.fchGelu[l]), weight: p + w.fcProjWeight,
                           rows: n, inChannels: 4 * c, outChannels: c, parallelism: par)
            geluBackward(dinp: d4, inp: acts.at(acts.fch[l]), dout: d4, count: n * 4 * c, accumulate: false, parallelism: par)
            d1.update(repeating: 0, count: n * c)
            matmulBackward(dinp: d1, dweight: g + w.fcWeight, dbias: g + w.fcBias, dout: d4,
                           inp: acts.at(acts.ln2[l]), weight: p + w.fcWeight,
                           rows: n, inChannels: c, outChannels: 4 * c, parallelism: par)
            layerNormBackward(dinp: dres, dweight: g + w.ln2Weight, dbias: g + w.ln2Bias, dout: d1,
                              inp: acts.at(acts.residual2[l]), weight: p + w.ln2Weight,
                              mean: acts.at(acts.ln2Mean[l]), rstd: acts.at(acts.ln2Rstd[l]), rows: n, channels: c, parallelism: par)
            // dres now holds d(residual2) = d(block input) through the skip connection.
            d1.update(repeating: 0, count: n * c)
            matmulBackward(dinp: d1, dweight: g + w.projWeight, dbias: g + w.projBias, dout: dres,
                           inp: acts.at(acts.atty[l]), weight: p + w.projWeight,
                           rows: n, inChannels: c, outChannels: c, parallelism: par)
            d3.update(repeating: 0, count: n * 3 * c)
            attentionBackward(dqkv: d3, dout: d1, qkv: acts.at(acts.qkv[l]), att: acts.at(acts.att[l]),
                              scratch: acts.at(acts.dAttention), batch: b, length: t, channels: c, heads: nh, parallelism: par)
            d1.update(repeating: 0, count: n * c)
            matmulBackward(dinp: d1, dweight: g + w.qkvWeight, dbias: g + w.qkvBias, dout: d3,
                           inp: acts.at(acts.ln1[l]), weight: p + w.qkvWeight,
                           rows: n, inChannels: c, outChannels: 3 * c, parallelism: par)
            layerNormBackward(dinp: dres, dweight: g + w.ln1Weight, dbias: g + w.ln1Bias, dout: d1,
                              inp: x, weight: p + w.ln1Weight,
                              mean: acts.at(acts.ln1Mean[l]), rstd: acts.at(acts.ln1Rstd[l]), rows: n, channels: c, parallelism: par)
        }
        encoderBackward(dwte: g + offsets.wte, dwpe: g + offsets.wpe, dout: dres, tokens: tokens,
                        batch: b, length: t, channels: c, parallelism: par)
    }
}

/// Offsets of each tensor the passes touch, looked up once from the layout.
struct LayerOffsets {
    struct Block {
        var ln1Weight = 0, ln1Bias = 0, qkvWeight = 0, qkvBias = 0, projWeight = 0, projBias = 0
        var ln2Weight = 0, ln2Bias = 0, fcWeight = 0, fcBias = 0, fcProjWeight = 0, fcProjBias = 0
    }
    let wte: Int, wpe: Int, lnfWeight: Int, lnfBias: Int
    let layers: [Block]

    init(layout: ParameterLayout, layers count: Int) {
        func at(_ name: String) -> Int {
            guard let t = layout.tensor(named: name) else { preconditionFailure("[GPT] layout lacks \(name)") }
            return t.offset
        }
        wte = at("wte.weight"); wpe = at("wpe.weight")
        lnfWeight = at("ln_f.weight"); lnfBias = at("ln_f.bias")
        layers = (0..<count).map { l in
            let p = "h.\(l)."
            return Block(
                ln1Weight: at(p + "ln_1.weight"), ln1Bias: at(p + "ln_1.bias"),
                qkvWeight: at(p + "attn.c_attn.weight"), qkvBias: at(p + "attn.c_attn.bias"),
                projWeight: at(p + "attn.c_proj.weight"), projBias: at(p + "attn.c_proj.bias"),
                ln2Weight: at(p + "ln_2.weight"), ln2Bias: at(p + "ln_2.bias"),
                fcWeight: at(p + "mlp.c_fc.weight"), fcBias: at(p + "mlp.c_fc.bias"),
                fcProjWeight: at(p + "mlp.c_proj.weight"), fcProjBias: at(p + "mlp.c_proj.bias"))
        }
    }
}
