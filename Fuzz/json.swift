// libFuzzer entry for FuzzTargets.json; built and run by scripts/fuzz.
import CarteiroFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.json(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
