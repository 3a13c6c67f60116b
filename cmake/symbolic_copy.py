#!/usr/bin/env python3
"""Copies a shared library and sets DF_SYMBOLIC in its dynamic section (what -Bsymbolic at link time
records), so the runtime linker binds the library's references to its own definitions first.

Why (lib/CMakeLists.txt, docs/hardening.md "Sanitizers"): Debian's libsentencepiece.so.0 exports the
protobuf-lite 3.14 it bundles and was not linked -Bsymbolic, so in a process whose global scope holds
LibTorch's libprotobuf 3.21 (a test executable linking LibTorch) its protobuf calls bind to 3.21 and
abort ("compiled against version 3.14.0"). RTLD_DEEPBIND avoided that but the sanitizer runtimes
refuse it; a private copy with DF_SYMBOLIC works in both builds. No tool on Debian sets this flag
(patchelf cannot), so it is done here: one bit of the existing DT_FLAGS entry of a 64-bit
little-endian ELF.

Usage: symbolic_copy.py --soname LIB        prints LIB's DT_SONAME
       symbolic_copy.py LIB OUT             writes the flagged copy to OUT
"""
import os
import struct
import sys

PT_DYNAMIC, DT_NULL, DT_STRTAB, DT_SONAME, DT_FLAGS, DF_SYMBOLIC = 2, 0, 5, 14, 30, 0x2


def fail(msg):
    sys.exit(f"symbolic_copy.py: {msg}")


def dynamic_entries(b, path):
    if b[:4] != b"\x7fELF" or b[4] != 2 or b[5] != 1:
        fail(f"{path}: not a 64-bit little-endian ELF file")
    phoff = struct.unpack_from("<Q", b, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", b, phoff + i * phentsize)
        if ptype == PT_DYNAMIC:
            for j in range(0, filesz, 16):
                tag, val = struct.unpack_from("<qQ", b, off + j)
                if tag == DT_NULL:
                    return
                yield off + j, tag, val
            return
    fail(f"{path}: no PT_DYNAMIC segment")


def vaddr_to_offset(b, addr):
    phoff = struct.unpack_from("<Q", b, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", b, phoff + i * phentsize)
        if ptype == 1 and vaddr <= addr < vaddr + filesz:  # PT_LOAD
            return addr - vaddr + off
    fail(f"address {addr:#x} is in no PT_LOAD segment")


def main(argv):
    if len(argv) == 3 and argv[1] == "--soname":
        b = open(argv[2], "rb").read()
        entries = {tag: val for _, tag, val in dynamic_entries(b, argv[2])}
        if DT_SONAME not in entries:
            fail(f"{argv[2]}: no DT_SONAME")
        start = vaddr_to_offset(b, entries[DT_STRTAB]) + entries[DT_SONAME]
        print(b[start:b.index(b"\0", start)].decode(), end="")
        return
    if len(argv) != 3:
        fail(__doc__.strip().splitlines()[-2].strip())
    src, out = argv[1], argv[2]
    b = bytearray(open(src, "rb").read())
    flags = [(pos, val) for pos, tag, val in dynamic_entries(b, src) if tag == DT_FLAGS]
    if not flags:
        fail(f"{src}: no DT_FLAGS entry to set DF_SYMBOLIC in")
    for pos, val in flags:
        struct.pack_into("<qQ", b, pos, DT_FLAGS, val | DF_SYMBOLIC)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv)
