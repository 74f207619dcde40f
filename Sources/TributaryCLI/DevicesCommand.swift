import Benchmarks
import ArgumentParser
import Dispatch
import Foundation
import Planner
import Basics
import TensorCore

/// This machine's CPU as a planner device: its sgemm rate measured now.
func measureLocalCPU(threads: Int) -> DeviceSpec {
    let gemm = EngineBenchmark(threads: threads, steps: 1).measureGemm(label: "1024^3", m: 1024, n: 1024, k: 1024, transposeB: false)
    var cpu = DeviceSpec(name: "local-cpu", bf16TFLOPS: gemm.splitGFLOPs / 1000,
                         // Full training steps reach 80-96% of sgemm in `bench engine`; 0.86 is its small-model figure.
                         achievable: 0.86, memoryGB: Double(ProcessInfo.processInfo.physicalMemory) / 1e9,
                         memoryBandwidthTBs: measureCopyBandwidth() / 1e12, intraNodeGBs: 0, devicesPerNode: 1, nicGbps: 1)
    cpu.aliases = ["cpu", "this-machine"]
    cpu.vendor = "this machine (\(threads) threads, fp32, OpenBLAS \(BLASCoreCheck.current().active))"
    cpu.fp32TFLOPS = cpu.bf16TFLOPS
    cpu.confidence = "measured"
    return cpu
}

/// The shipped catalogue, the user's file on top, and this machine's CPU when asked for.
func loadCatalogue(devicesFile: String?, measureCPU: Bool, threads: Int) throws -> DeviceCatalogue {
    var catalogue = try DeviceCatalogue.shipped()
    // The user's file comes last so that a calibrated local-cpu (bench engine --calibration) wins.
    if measureCPU { catalogue.merge(DeviceCatalogue(devices: [measureLocalCPU(threads: threads)])) }
    if let devicesFile {
        guard let text = try? String(contentsOfFile: devicesFile, encoding: .utf8) else {
            throw ValidationError("cannot read the device file \(devicesFile)")
        }
        catalogue.merge(try DeviceCatalogue(yaml: text, source: devicesFile))
    }
    return catalogue
}

/// The catalogue calibrated by a profile of measured micro-batch times, when one is given; what
/// changed goes to standard error.
func applyProfile(_ path: String?, to catalogue: DeviceCatalogue) throws -> DeviceCatalogue {
    guard let path else { return catalogue }
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read the profile \(path)") }
    let (calibrated, changes) = try DeviceProfile(yaml: text, source: path).calibrate(catalogue)
    for c in changes {
        let spread = c.implied.count > 1 ? String(format: " (measurements imply %.2f–%.2f)", c.implied.min()!, c.implied.max()!) : ""
        printError(String(format: "calibrated %@ from %d measurement(s): achievable %.2f → %.2f%@", c.device, c.measurements,
                          c.achievableBefore, c.achievableAfter, spread))
    }
    return calibrated
}

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "The planner's device catalogue, and this machine's CPU measured now."
    )

    @Option(help: "A YAML file of more devices (the catalogue's layout); same names replace shipped ones.") var devices: String?
    @Option(help: "Threads for measuring this machine's CPU (default: the cores this process may use).")
    var threads = UsableCores.count
    @Flag(help: "Skip measuring this machine's CPU.") var noMeasure = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            BLASCoreRestart.announce()
            let catalogue = try loadCatalogue(devicesFile: devices, measureCPU: !noMeasure, threads: threads)
            if json {
                try printJSON(catalogue.devices)
                return
            }
            func column(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
            print("device          vendor   arch      BF16 TF  FP32 TF  achievable  memory GB  mem TB/s  node GB/s  per node  NIC Gb/s"
                  + "  fused attn     TPP  class           conf")
            for d in catalogue.devices {
                print(column(d.name, 15) + " " + column(String(d.vendor.prefix(8)), 8) + " " + column(String(d.architecture.prefix(8)), 8)
                      + String(format: " %8.1f %8.1f %11.2f %10.0f %9.3f %10.0f %9d %9.0f  ", d.bf16TFLOPS, d.fp32TFLOPS,
                               d.achievable, d.memoryGB, d.memoryBandwidthTBs, d.intraNodeGBs, d.devicesPerNode, d.nicGbps)
                      + column(d.fusedAttention ? "yes" : "no", 10) + String(format: " %7.0f  ", d.tpp)
                      + column(d.exportClass, 15) + " " + d.confidence)
            }
            print("\nConfidence: P primary source, S secondary, D derived, U uncertain; each device's sources are in `devices --json` "
                  + "and Sources/Planner/Resources/devices.yaml. Turing and older list FP16 with FP32 accumulation (no BF16).")
            print("local-cpu is this machine measured now: its rate is fp32 sgemm, as Tributary's engine trains in fp32.")
            print("\(BLASCoreCheck.current().summary); usable cores for this process: \(UsableCores.count).")
        }
    }
}
