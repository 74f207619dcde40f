import Dispatch
import NIOCore
import Transport
import Wire

/// Measures the bandwidth of one link: the prober streams `bytes` of probe frames, the answerer
/// replies once it has them all; rate = bytes / (time to reply − one round-trip of a tiny frame).
public enum BandwidthProbe {
    /// The result of one probe.
    public struct Measurement: Sendable, Codable {
        public var bytes: Int
        public var seconds: Double
        /// Seconds for an empty probe to be answered (about one round trip).
        public var roundTripSeconds: Double
        public var bytesPerSecond: Double
    }

    /// Runs the prober side over `link` (the answerer must be running `answer` on its end).
    public static func measure(over link: any FrameLink, bytes: Int, frameBytes: Int = 1 << 20, runID: UInt64, rank: UInt32,
                               timeout: TimeAmount = .seconds(120)) async throws -> Measurement {
        func probe(_ size: Int, last: Bool) -> Frame {
            var payload = ByteBuffer()
            payload.writeRepeatingByte(0x5A, count: size)
            // count = 1 marks the last frame of a burst, which the answerer replies to.
            return Frame(header: FrameHeader(type: .probe, runID: runID, sender: rank, count: last ? 1 : 0), payload: payload)
        }
        func burst(_ total: Int) async throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            var sent = 0
            var sender = Sender(link: link, window: 8)
            repeat {
                let size = min(frameBytes, total - sent)
                sent += size
                try await sender.post(probe(size, last: sent >= total))
            } while sent < total
            try await sender.drain()
            let reply = try await link.receive(timeout: timeout, what: "a probe reply")
            guard reply.header.type == .probeReply, reply.header.count == UInt64(total) else {
                throw TransportError.protocolViolation(peer: link.peerDescription, reason: "expected a probe reply for \(total) bytes, got \(reply.header.type) \(reply.header.count)")
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let rtt = try await burst(0)
        let seconds = try await burst(bytes)
        return Measurement(bytes: bytes, seconds: seconds, roundTripSeconds: rtt,
                           bytesPerSecond: Double(bytes) / max(seconds - rtt, 1e-9))
    }

    /// Answers `bursts` probe bursts arriving on `link`.
    public static func answer(on link: any FrameLink, bursts: Int = 2, runID: UInt64, rank: UInt32,
                              timeout: TimeAmount = .seconds(120)) async throws {
        for _ in 0..<bursts {
            var received = 0
            while true {
                let frame = try await link.receive(timeout: timeout, what: "probe data")
                guard frame.header.type == .probe else {
                    throw TransportError.protocolViolation(peer: link.peerDescription, reason: "expected probe data, got \(frame.header.type)")
                }
                received += frame.payload.readableBytes
                if frame.header.count == 1 { break }
            }
            let reply = Frame(header: FrameHeader(type: .probeReply, runID: runID, sender: rank, count: UInt64(received)), payload: ByteBuffer())
            try await link.send(reply).get()
        }
    }
}
