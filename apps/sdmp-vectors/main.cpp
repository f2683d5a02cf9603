// sdmp-vectors: prints the protocol test vectors (docs/protocol.md §8).
//
//   sdmp-vectors                  print the vectors
//   sdmp-vectors --write-doc FILE replace the block between the vector markers in FILE
//   sdmp-vectors --check-doc FILE exit 1 unless FILE holds exactly these vectors
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "vectors.hpp"

namespace {

bool read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

int usage() {
    std::cerr << "usage: sdmp-vectors [--write-doc FILE | --check-doc FILE]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string vectors = sdmp::vectors::generate();
        if (argc == 1) {
            std::cout << vectors;
            return 0;
        }
        if (argc != 3)
            return usage();
        const std::string mode = argv[1];
        const std::string path = argv[2];
        std::string doc;
        if (!read_file(path, doc)) {
            std::cerr << "sdmp-vectors: cannot read " << path << "\n";
            return 1;
        }
        if (mode == "--check-doc") {
            std::string current;
            if (!sdmp::vectors::extract_from_doc(doc, current)) {
                std::cerr << "sdmp-vectors: no vector block in " << path << "\n";
                return 1;
            }
            if (current != vectors) {
                std::cerr << "sdmp-vectors: " << path << " is out of date\n";
                return 1;
            }
            return 0;
        }
        if (mode == "--write-doc") {
            if (!sdmp::vectors::replace_in_doc(doc, vectors)) {
                std::cerr << "sdmp-vectors: no vector markers in " << path << "\n";
                return 1;
            }
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out << doc;
            if (!out) {
                std::cerr << "sdmp-vectors: cannot write " << path << "\n";
                return 1;
            }
            return 0;
        }
        return usage();
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
