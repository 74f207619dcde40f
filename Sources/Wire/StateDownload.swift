import Basics
import NIOCore
import TensorCore

/// A worker's state sent straight to a worker that has none (a newcomer, or one that fell behind):
/// the source splits the flat vector into `stateChunk` frames in order, each checked by its frame's
/// CRC32C, and ends with `stateEnd`, which carries the total and the CRC32C of all the values'
/// bytes, so that a chunk lost, repeated or reordered is caught as well as a corrupted one.
public struct StateUpload: IteratorProtocol {
    /// Values per chunk by default: 1 MiB of fp32, well inside the frame limit.
    public static let defaultChunkValues = 1 << 18

    private let state: UnsafeBufferPointer<Float>
    private let runID: UInt64
    private let sender: UInt32
    private let chunkValues: Int
    private var sent = 0
    private var crc: UInt32 = 0
    private var ended = false

    /// The frames that carry `state` (which must outlive the upload) from `sender`.
    public init(state: UnsafeBufferPointer<Float>, runID: UInt64, sender: UInt32, chunkValues: Int = defaultChunkValues) {
        precondition(chunkValues > 0, "[StateUpload] chunks of \(chunkValues) values")
        (self.state, self.runID, self.sender, self.chunkValues) = (state, runID, sender, chunkValues)
    }

    /// The next chunk, then the end, then nil; made one at a time so that a large state is never copied whole.
    public mutating func next() -> Frame? {
        if sent < state.count {
            let range = sent..<min(state.count, sent + chunkValues)
            var payload = ByteBuffer()
            var random = LaneRandom(seed: 0)
            CodecID.fp32.codec.encode(UnsafeBufferPointer(rebasing: state[range]), into: &payload, rounding: .nearest, random: &random)
            crc = payload.withUnsafeReadableBytes { CRC32C.checksum($0, continuing: crc) }
            sent = range.upperBound
            return Frame(header: FrameHeader(type: .stateChunk, runID: runID, sender: sender, offset: UInt64(range.lowerBound),
                                             count: UInt64(range.count)), payload: payload)
        }
        guard !ended else { return nil }
        ended = true
        var end = ByteBuffer()
        end.writeInteger(UInt64(state.count))
        end.writeInteger(crc)
        return Frame(header: FrameHeader(type: .stateEnd, runID: runID, sender: sender), payload: end)
    }
}

/// The receiving side of a state download as a state machine: takes frames, writes the values
/// into the destination in order, and says when the whole state arrived intact. Every size comes
/// from the receiver (the destination's length and the largest chunk), none from the sender.
public struct StateDownload: Sendable {
    /// What the caller does next.
    public enum Action: Sendable, Equatable {
        /// Wait for the next frame.
        case awaitMore
        /// Every value arrived and the checksum over all of them matches.
        case complete
    }

    public let count: Int
    public let maxChunkValues: Int
    /// Values received so far (the next chunk must start here).
    public private(set) var received = 0
    private var crc: UInt32 = 0
    public private(set) var isComplete = false

    /// A download of `count` values in chunks of at most `maxChunkValues`.
    public init(count: Int, maxChunkValues: Int = StateUpload.defaultChunkValues) {
        (self.count, self.maxChunkValues) = (count, maxChunkValues)
    }

    /// A frame arrived; its values go into `destination` (of `count` values). Throws, naming
    /// what was wrong, for a frame out of order, of the wrong size or type, or a mismatched end.
    public mutating func received(_ frame: Frame, into destination: UnsafeMutableBufferPointer<Float>) throws -> Action {
        precondition(destination.count == count, "[StateDownload] \(destination.count) values for a download of \(count)")
        let h = frame.header
        guard !isComplete else { throw WireError.unexpectedMessage(h.type, state: "the state download is complete") }
        switch h.type {
        case .stateChunk:
            guard h.offset == UInt64(received) else {
                throw WireError.malformedPayload("state chunk at value \(h.offset), expected the one at \(received)")
            }
            guard h.count > 0, h.count <= UInt64(min(maxChunkValues, count - received)) else {
                throw WireError.rangeTooLarge(count: h.count, limit: min(maxChunkValues, count - received))
            }
            guard h.codec == .fp32 else { throw WireError.malformedPayload("state chunk in \(h.codec), expected fp32") }
            let range = received..<(received + Int(h.count))
            try CodecID.fp32.codec.decode(frame.payload, into: UnsafeMutableBufferPointer(rebasing: destination[range]), accumulate: false)
            crc = frame.payload.withUnsafeReadableBytes { CRC32C.checksum($0, continuing: crc) }
            received = range.upperBound
            return .awaitMore
        case .stateEnd:
            var p = frame.payload
            guard let total = p.readInteger(as: UInt64.self), let sum = p.readInteger(as: UInt32.self), p.readableBytes == 0 else {
                throw WireError.malformedPayload("state end of \(frame.payload.readableBytes) bytes is not a total and a checksum")
            }
            guard total == UInt64(count), received == count else {
                throw WireError.malformedPayload("state ended after \(received) values (the source says \(total)); \(count) expected")
            }
            guard sum == crc else { throw WireError.checksumMismatch(expected: sum, actual: crc) }
            isComplete = true
            return .complete
        default:
            throw WireError.unexpectedMessage(h.type, state: "downloading state (\(received) of \(count) values)")
        }
    }
}
