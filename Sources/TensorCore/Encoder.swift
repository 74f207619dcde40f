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
    parallelism.forEachChunk(b &* t) { row in
        let pos = row % t
        let dst = out + row &* c
        let te = wte + Int(tokens[row]) &* c
        let pe = wpe + pos &* c
        addVectors(dst, te, pe, count: c)
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
    parallelism.forEachRange(c, grain: 16) { range in
        let width = range.count
        for row in 0..<(b &* t) {
            let src = dout + (row &* c &+ range.lowerBound)
            let te = dwte + (Int(tokens[row]) &* c &+ range.lowerBound)
            let pe = dwpe + ((row % t) &* c &+ range.lowerBound)
            addVectors(te, te, src, count: width)
            addVectors(pe, pe, src, count: width)
        }
    }
}
