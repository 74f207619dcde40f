import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The float32 parameters both sides of the engine link map: a file in /dev/shm (memory, no disk),
/// readable and writable by this user only, removed when the link ends.
public final class SharedParameterBuffer {
    public let path: String
    public let values: UnsafeMutableBufferPointer<Float>
    private let descriptor: Int32

    /// Creates and maps a new buffer of `count` values named after `name`.
    public init(count: Int, name: String) throws {
        precondition(count > 0)
        let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }.prefix(64))
        path = "\(folder)/tributary-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let bytes = count * MemoryLayout<Float>.stride
        descriptor = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw EngineLinkError("cannot create the shared parameter buffer \(path): \(String(cString: strerror(errno)))") }
        guard ftruncate(descriptor, off_t(bytes)) == 0,
              let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            unlink(path)
            throw EngineLinkError("cannot map \(bytes) bytes for the shared parameter buffer \(path): \(reason)")
        }
        values = UnsafeMutableBufferPointer(start: mapped.assumingMemoryBound(to: Float.self), count: count)
    }

    deinit {
        munmap(values.baseAddress, values.count * MemoryLayout<Float>.stride)
        close(descriptor)
        unlink(path)
    }
}
