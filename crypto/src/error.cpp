// The sdmp error category (crypto/include/sdmp/error.hpp).
#include "sdmp/error.hpp"

#include <string>

namespace sdmp {
namespace {

class SdmpCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "sdmp"; }

    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::ok:
                return "success";
            case errc::crypto_failure:
                return "cryptographic primitive failed";
            case errc::invalid_key:
                return "invalid key (wrong size or type)";
            case errc::low_order_point:
                return "Diffie-Hellman result is all zero (low-order point)";
            case errc::authentication_failed:
                return "authentication failed (bad tag or signature)";
            case errc::file_not_found:
                return "file not found";
            case errc::file_permissions:
                return "private key file is readable by group or others";
            case errc::file_malformed:
                return "file is malformed";
            case errc::file_io:
                return "file input/output error";
            case errc::unknown_peer:
                return "unknown peer";
            case errc::duplicate_peer:
                return "duplicate peer";
            case errc::malformed:
                return "malformed data";
            case errc::limit_exceeded:
                return "length limit exceeded";
            case errc::bad_padding:
                return "record padding is not zero";
            case errc::decompression_failed:
                return "decompression failed";
            case errc::counter_exhausted:
                return "nonce counter exhausted";
            case errc::handshake_rejected:
                return "handshake rejected";
        }
        return "unknown sdmp error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& sdmp_category() noexcept {
    static const SdmpCategory category;
    return category;
}

}  // namespace sdmp
