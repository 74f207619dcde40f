/// out (B·T,C) = wte[token] + wpe[position]: token and learned position embeddings.
///
/// `tokens` has B·T ids laid out (B,T); ids must be below the vocabulary size (caller checks).
public func encoderForward(
    out: UnsafeMutablePointer<Float>,
    tokens: UnsafePointer<Int32>,
    wte: UnsafePointer<Float>,
    wpe: UnsafePointer<Float>,
    batch b: Int, length t: Int, channels c: Int,
    parallelism: Parallelism
) {
    parallelism.run(b &* t, EncoderRows(out: out, tokens: tokens, wte: wte, wpe: wpe, length: t, channels: c))
}

struct EncoderRows: ParallelWork {
    let out: UnsafeMutablePointer<Float>
    let tokens: UnsafePointer<Int32>
    let wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>
    let length: Int, channels: Int

    func run(_ rows: Range<Int>) {
        for row in rows {
            addVectors(out + row &* channels, wte + Int(tokens[row]) &* channels,
                       wpe + (row % length) &* channels, count: channels)
        }
    }
}

/// Backward of `encoderForward`; accumulates into `dwte` (V,C) and `dwpe` (maxT,C).
///
/// Threads own channel ranges, so repeated tokens are summed in a fixed order without locks.
public func encoderBackward(
    dwte: UnsafeMutablePointer<Float>,
    dwpe: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>,
    tokens: UnsafePointer<Int32>,
    batch b: Int, length t: Int, channels c: Int,
    parallelism: Parallelism
) {
    parallelism.run(c, grain: 16, alignment: 16,
                    EncoderBackwardColumns(dwte: dwte, dwpe: dwpe, dout: dout, tokens: tokens, rows: b &* t, length: t, channels: c))
}

struct EncoderBackwardColumns: ParallelWork {
    let dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>
    let dout: UnsafePointer<Float>
    let tokens: UnsafePointer<Int32>
    let rows: Int, length: Int, channels: Int

    func run(_ range: Range<Int>) {
        let c = channels
        for row in 0..<rows {
            let src = dout + (row &* c &+ range.lowerBound)
            let te = dwte + (Int(tokens[row]) &* c &+ range.lowerBound)
            let pe = dwpe + ((row % length) &* c &+ range.lowerBound)
            addVectors(te, te, src, count: range.count)
            addVectors(pe, pe, src, count: range.count)
        }
    }
}
