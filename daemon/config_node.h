// config_node.h: internal to daemon/config*.cc. Node, the typed reader of one YAML mapping that
// every section parser uses, and the section parsers that live in their own files.
#ifndef SHAKEN_DAEMON_CONFIG_NODE_H_
#define SHAKEN_DAEMON_CONFIG_NODE_H_

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/config.h"

namespace shaken::daemon::config_internal {

// Node reads one YAML mapping, remembering which keys were consumed so that Finish() can refuse
// the rest. Errors carry the key path.
class Node {
 public:
  Node(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  absl::Status CheckMap() const {
    if (!node_.IsMap()) return Error(path_, "must be a mapping of keys to values");
    return absl::OkStatus();
  }

  bool Has(const std::string& key) {
    seen_.insert(key);
    return node_[key].IsDefined() && !node_[key].IsNull();
  }
  std::string Path(const std::string& key) const {
    return path_.empty() ? key : absl::StrCat(path_, ".", key);
  }
  YAML::Node Get(const std::string& key) {
    seen_.insert(key);
    return node_[key];
  }

  absl::Status String(const std::string& key, std::string* out) {
    if (!Has(key)) return absl::OkStatus();
    YAML::Node n = Get(key);
    if (!n.IsScalar()) return Error(Path(key), "must be a string");
    *out = n.Scalar();
    return absl::OkStatus();
  }
  absl::Status Bool(const std::string& key, bool* out) {
    if (!Has(key)) return absl::OkStatus();
    YAML::Node n = Get(key);
    const std::string& s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true") {
      *out = true;
    } else if (s == "false") {
      *out = false;
    } else {
      return Error(Path(key), "must be true or false");
    }
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status Number(const std::string& key, T* out, T min, T max) {
    if (!Has(key)) return absl::OkStatus();
    YAML::Node n = Get(key);
    long long v = 0;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v) || v < static_cast<long long>(min) ||
        v > static_cast<long long>(max)) {
      return Error(Path(key), absl::StrCat("must be a whole number from ", min, " to ", max));
    }
    *out = static_cast<T>(v);
    return absl::OkStatus();
  }
  absl::Status Duration(const std::string& key, absl::Duration* out) {
    if (!Has(key)) return absl::OkStatus();
    YAML::Node n = Get(key);
    absl::Duration d;
    if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) || d < absl::ZeroDuration()) {
      return Error(Path(key), "must be a duration such as 500ms, 60s, 5m or 24h");
    }
    *out = d;
    return absl::OkStatus();
  }
  // Choice reads a string that must be one of `choices` into its typed value; otherwise the
  // error is "<path> <must>".
  template <typename T>
  absl::Status Choice(const std::string& key,
                      std::initializer_list<std::pair<std::string_view, T>> choices, T* out,
                      std::string_view must) {
    if (!Has(key)) return absl::OkStatus();
    YAML::Node n = Get(key);
    if (n.IsScalar()) {
      for (const auto& [name, value] : choices) {
        if (n.Scalar() == name) {
          *out = value;
          return absl::OkStatus();
        }
      }
    }
    return Error(Path(key), must);
  }
  absl::Status StringList(const std::string& key, std::vector<std::string>* out) {
    if (!Has(key)) return absl::OkStatus();
    YAML::Node n = Get(key);
    if (!n.IsSequence()) return Error(Path(key), "must be a list of strings");
    out->clear();
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar()) return Error(absl::StrCat(Path(key), "[", i, "]"), "must be a string");
      out->push_back(n[i].Scalar());
    }
    return absl::OkStatus();
  }

  // Finish refuses keys that were never asked for.
  absl::Status Finish() const {
    for (const auto& item : node_) {
      std::string key = item.first.IsScalar() ? item.first.Scalar() : "?";
      if (!seen_.count(key)) {
        return Error(Path(key), "is not a known setting (misspelt? see deploy/shakend.example.yaml)");
      }
    }
    return absl::OkStatus();
  }

  static absl::Status Error(const std::string& path, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(path, " ", std::string(what)));
  }

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

// ReadListen reads the `listen` section (config_listen.cc): API, health and metrics addresses,
// TLS, listen.rest and listen.sip.
absl::Status ReadListen(Node& root, Config* c);
// ReadSipRole reads auto | sign | verify under `key` (listen.sip.role, clients[].sip_role).
absl::Status ReadSipRole(Node& n, const std::string& key, SipRole* out);

}  // namespace shaken::daemon::config_internal

#endif  // SHAKEN_DAEMON_CONFIG_NODE_H_
