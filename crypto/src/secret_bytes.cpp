// Secure wiping for key material (crypto/include/sdmp/crypto/secret_bytes.hpp).
#include "sdmp/crypto/secret_bytes.hpp"

#include <string.h>  // explicit_bzero (glibc >= 2.25)

namespace sdmp::crypto {

void secure_wipe(void* data, std::size_t size) noexcept {
    // explicit_bzero is documented not to be removed by dead-store elimination, unlike memset.
    if (data != nullptr && size != 0)
        explicit_bzero(data, size);
}

}  // namespace sdmp::crypto
