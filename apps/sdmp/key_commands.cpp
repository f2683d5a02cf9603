// keygen, id and trust: everything that only touches key and trust-store files.
#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <string>

#include "commands.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"

namespace sdmp::apps {
namespace {

namespace fs = std::filesystem;

int fail(const crypto::FileError& error) {
    fmt::print(stderr, "sdmp: {}\n", error.message);
    return 1;
}

int keygen(const fs::path& out) {
    auto& provider = crypto::default_provider();
    auto identity = crypto::Identity::generate(provider);
    fs::path pub = out;
    pub += ".pub";
    if (auto error = crypto::save_identity(identity, out))
        return fail(error);
    if (auto error = crypto::save_public_identity(identity.public_identity(), pub))
        return fail(error);
    fmt::print("{}\n", identity.fingerprint().hex());
    return 0;
}

int show_id(const fs::path& file) {
    auto& provider = crypto::default_provider();
    crypto::PublicIdentity identity;
    if (auto error = crypto::load_public_identity(provider, file, identity))
        return fail(error);
    fmt::print("{}\n", identity.fingerprint(provider).hex());
    return 0;
}

// A store that does not exist yet is empty; `trust add` creates it.
crypto::FileError load_store(const fs::path& path, crypto::TrustStore& store) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        store = crypto::TrustStore{};
        return {};
    }
    return crypto::TrustStore::load(crypto::default_provider(), path, store);
}

int trust_add(const fs::path& store_path, const fs::path& file, const std::string& name,
              const std::string& address) {
    // Checked first, with its own message: TrustStore::add only says "malformed". A name that
    // reads as a fingerprint (prefix) could make a lookup of that fingerprint, such as
    // `--peer FP`, find this entry's key instead (protocol.md §7.2).
    if (!name.empty()) {
        if (const std::string problem = crypto::peer_name_problem(name); !problem.empty()) {
            fmt::print(stderr, "sdmp: invalid --name '{}': {}\n", name, problem);
            return 1;
        }
    }
    auto& provider = crypto::default_provider();
    crypto::TrustStore store;
    if (auto error = load_store(store_path, store))
        return fail(error);
    crypto::PublicIdentity identity;
    if (auto error = crypto::load_public_identity(provider, file, identity))
        return fail(error);
    crypto::TrustedPeer peer{identity, identity.fingerprint(provider), name, address};
    const auto fingerprint = peer.fingerprint.hex();
    if (auto ec = store.add(std::move(peer))) {
        fmt::print(stderr, "sdmp: {}: cannot add {}: {}\n", store_path.string(), fingerprint,
                   ec.message());
        return 1;
    }
    if (auto error = store.save(store_path))
        return fail(error);
    fmt::print("{}\n", fingerprint);
    return 0;
}

int trust_list(const fs::path& store_path) {
    crypto::TrustStore store;
    if (auto error = crypto::TrustStore::load(crypto::default_provider(), store_path, store)) {
        return fail(error);
    }
    for (const auto* peer : store.peers()) {
        fmt::print("{}  {:<16} {}\n", peer->fingerprint.hex(),
                   peer->name.empty() ? "-" : peer->name,
                   peer->address.empty() ? "-" : peer->address);
    }
    return 0;
}

int trust_remove(const fs::path& store_path, const std::string& which) {
    crypto::TrustStore store;
    if (auto error = crypto::TrustStore::load(crypto::default_provider(), store_path, store)) {
        return fail(error);
    }
    if (auto ec = store.remove(which)) {
        fmt::print(stderr, "sdmp: {}: cannot remove '{}': {}\n", store_path.string(), which,
                   ec.message());
        return 1;
    }
    if (auto error = store.save(store_path))
        return fail(error);
    return 0;
}

}  // namespace

void add_key_commands(CLI::App& app, Action& action) {
    auto* keygen_cmd =
        app.add_subcommand("keygen", "Create an identity: FILE (private, mode 0600) and FILE.pub");
    auto keygen_out = std::make_shared<std::string>();
    keygen_cmd->add_option("--out", *keygen_out, "Private key file to write")->required();
    keygen_cmd->callback(
        [&action, keygen_out] { action = [keygen_out] { return keygen(*keygen_out); }; });

    auto* id_cmd =
        app.add_subcommand("id", "Print the fingerprint of a private or public identity file");
    auto id_file = std::make_shared<std::string>();
    id_cmd->add_option("FILE", *id_file, "Identity file")->required();
    id_cmd->callback([&action, id_file] { action = [id_file] { return show_id(*id_file); }; });

    auto* trust_cmd =
        app.add_subcommand("trust", "Manage a trust store (the peers this node accepts)");
    trust_cmd->require_subcommand(1);

    struct AddArgs {
        std::string store, file, name, address;
    };
    auto add_args = std::make_shared<AddArgs>();
    auto* add_cmd = trust_cmd->add_subcommand("add", "Trust a public identity file");
    add_cmd->add_option("--store", add_args->store, "Trust store file or folder")->required();
    add_cmd->add_option("FILE", add_args->file, "Public identity file (FILE.pub)")->required();
    add_cmd->add_option("--name", add_args->name, "A short name for the peer");
    add_cmd->add_option("--address", add_args->address, "HOST:PORT where the peer listens");
    add_cmd->callback([&action, add_args] {
        action = [add_args] {
            return trust_add(add_args->store, add_args->file, add_args->name, add_args->address);
        };
    });

    auto list_store = std::make_shared<std::string>();
    auto* list_cmd = trust_cmd->add_subcommand("list", "List trusted peers");
    list_cmd->add_option("--store", *list_store, "Trust store file or folder")->required();
    list_cmd->callback(
        [&action, list_store] { action = [list_store] { return trust_list(*list_store); }; });

    struct RemoveArgs {
        std::string store, which;
    };
    auto remove_args = std::make_shared<RemoveArgs>();
    auto* remove_cmd = trust_cmd->add_subcommand("remove", "Stop trusting a peer");
    remove_cmd->add_option("--store", remove_args->store, "Trust store file or folder")->required();
    remove_cmd->add_option("PEER", remove_args->which, "Fingerprint or name")->required();
    remove_cmd->callback([&action, remove_args] {
        action = [remove_args] { return trust_remove(remove_args->store, remove_args->which); };
    });
}

}  // namespace sdmp::apps
