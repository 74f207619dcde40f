import Dispatch
import Foundation
import NIOCore
import Wire

/// Single-thread encode and decode throughput and error of every codec, on one vector.
public struct CodecBenchmark {
    public struct Result: Codable {
        public let codec: String
        public let bytesPerValue: Double
        /// Size relative to fp32.
        public let compression: Double
        /// GB/s of fp32 input, encode alone, decode (accumulating) alone, and both in sequence.
        public let encodeGBps: Double
        public let decodeGBps: Double
        public let roundTripGBps: Double
        /// ‖decoded − x‖ / ‖x‖.
        public let relativeRMSError: Double
    }

    public struct Report: Codable {
        public let values: Int
        /// memcpy of the same vector, the baseline for the throughputs.
        public let memcpyGBps: Double
        public let codecs: [Result]
    }

    public let values: Int
    public let codecs: [CodecID] = [.fp32, .fp16, .bf16, .int8(block: 4096)!, .int8(block: 256)!, .int4(block: 4096)!,
                             .int4(block: 256)!, .topK(k: 64, bits: 2)!, .topK(k: 64, bits: 8)!, .topK(k: 256, bits: 4)!]

    public init(values: Int) {
        self.values = values
    }

    public func run(log: (String) -> Void) throws -> Report {
        var random = LaneRandom(seed: 7)
        var x = [Float](repeating: 0, count: values)
        for i in stride(from: 0, to: values, by: 16) {
            // Gaussian-like values (sum of uniforms), like gradients and pseudo-gradients.
            let g = random.next() + random.next() + random.next() - 1.5
            for j in 0..<min(16, values - i) { x[i + j] = g[j] * 0.01 }
        }
        let bytes = Double(values * 4)
        var copy = [Float](repeating: 0, count: values)
        let memcpy = bytes / fastest(of: 7) { copy.withUnsafeMutableBufferPointer { dst in x.withUnsafeBufferPointer { dst.baseAddress!.update(from: $0.baseAddress!, count: values) } } } / 1e9
        log(String(format: "%d values, one thread; memcpy %.2f GB/s", values, memcpy))
        log("codec                 B/value  x smaller  encode GB/s  decode GB/s  round trip GB/s  rel. RMS error")
        var results: [Result] = []
        for id in codecs {
            let codec = id.codec
            var buffer = ByteBuffer()
            buffer.reserveCapacity(codec.encodedByteCount(count: values))
            let encode = bytes / fastest(of: 7) {
                buffer.clear()
                x.withUnsafeBufferPointer { codec.encode($0, into: &buffer, rounding: .nearest, random: &random) }
            } / 1e9
            var out = [Float](repeating: 0, count: values)
            let decode = try bytes / fastest(of: 7) {
                try out.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: true) }
            } / 1e9
            try out.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: false) }
            var err = 0.0, norm = 0.0
            for i in 0..<values {
                err += Double(out[i] - x[i]) * Double(out[i] - x[i])
                norm += Double(x[i]) * Double(x[i])
            }
            let r = Result(codec: codec.name, bytesPerValue: codec.bytesPerValue, compression: 4 / codec.bytesPerValue,
                           encodeGBps: encode, decodeGBps: decode, roundTripGBps: 1 / (1 / encode + 1 / decode),
                           relativeRMSError: (err / max(norm, 1e-30)).squareRoot())
            log(String(format: "%@ %7.4f  %9.1f  %11.2f  %11.2f  %15.2f  %14.2e",
                       r.codec.padding(toLength: 20, withPad: " ", startingAt: 0), r.bytesPerValue, r.compression,
                       r.encodeGBps, r.decodeGBps, r.roundTripGBps, r.relativeRMSError))
            results.append(r)
        }
        return Report(values: values, memcpyGBps: memcpy, codecs: results)
    }
}
