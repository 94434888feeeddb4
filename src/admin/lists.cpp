// Allow/block list operations: the scope's permission, then the list,
// kind and value are checked before an entry is written.
#include "mxguard/admin/lists.hpp"

#include <fmt/format.h>

#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/text.hpp"

namespace mxguard::admin {

const std::string_view kListKinds =
    "KIND is sender (an address, or *@domain), sender-domain (a domain and its subdomains, or *.domain for "
    "the subdomains only) or ip (an address or CIDR block)";

namespace {

Outcome<store::ListAction> action_of(std::string_view list) {
  auto action = store::list_action_from_string(list);
  if (!action) return usage(fmt::format("unknown list '{}' (allow or block)", list), "list");
  return *action;
}

// The scope a principal may change: a domain it manages, or "" (global) for operators.
Outcome<std::string> scope_of(const Actor& a, std::string_view domain) {
  if (domain.empty()) {
    if (!is_operator(a.principal)) return forbidden("the global lists are for operators");
    return std::string();
  }
  auto name = normalize_domain(domain);
  if (!name) return usage(name.error(), "domain");
  if (auto d = managed_domain(a.store, a.principal, *name); !d) return d.failure();
  return std::move(*name);
}

// Validates the input into an entry; nothing is written here.
Outcome<store::ListEntry> entry_from(const Actor& a, const ListEntryInput& in) {
  auto action = action_of(in.list);
  if (!action) return action.failure();
  // The scope's permission first: a role refused the list learns nothing about its input.
  auto scope = scope_of(a, in.domain);
  if (!scope) return scope.failure();
  store::ListEntry e;
  e.action = *action;
  e.scope = std::move(*scope);
  auto kind = store::list_kind_from_string(in.kind);
  if (!kind) return usage(fmt::format("unknown kind '{}' ({})", in.kind, kListKinds), "kind");
  auto target = store::canonical_list_entry(*kind, in.value);
  if (!target) return usage(target.error(), "value");
  e.kind = target->kind;
  e.value = std::move(target->value);
  e.added_ms = now_ms();
  return e;
}

Outcome<ListChange> change(const Actor& a, const ListEntryInput& in, bool add) {
  auto e = entry_from(a, in);
  if (!e) return e.failure();
  auto changed = add ? a.store.add_list_entry(*e) : a.store.remove_list_entry(*e);
  if (!changed) return unavailable(changed.error());
  std::string where = e->scope.empty() ? "global" : e->scope;
  std::string_view kind = store::to_string(e->kind), list = store::to_string(e->action);
  nlohmann::ordered_json entry{{"list", list}, {"scope", where}, {"kind", kind}, {"value", e->value}};
  if (*changed)
    if (auto s = audit(a.store, a.principal, add ? "list.add" : "list.remove", where,
                       add ? nlohmann::ordered_json(nullptr) : entry, add ? entry : nlohmann::ordered_json(nullptr));
        !s)
      return unavailable(s.error());
  if (!*changed && !add) {
    Failure f = not_found(fmt::format("{} {} is not on the {} {} list", kind, e->value, where, list));
    f.field = "value";
    return f;
  }
  return ListChange{std::move(*e), *changed};
}

}  // namespace

Outcome<ListShown> show_list(const Actor& a, std::string_view list, std::string_view domain) {
  auto action = action_of(list);
  if (!action) return action.failure();
  auto scope = scope_of(a, domain);
  if (!scope) return scope.failure();
  auto entries = a.store.list_entries(*scope, false);
  if (!entries) return unavailable(entries.error());
  std::erase_if(*entries, [&](const store::ListEntry& e) { return e.action != *action; });
  return ListShown{std::move(*scope), *action, std::move(*entries)};
}

Outcome<ListChange> add_list_entry(const Actor& a, const ListEntryInput& in) { return change(a, in, true); }

Outcome<ListChange> remove_list_entry(const Actor& a, const ListEntryInput& in) { return change(a, in, false); }

nlohmann::ordered_json list_entry_json(const store::ListEntry& e) {
  return {{"list", store::to_string(e.action)},
          {"scope", e.scope.empty() ? "global" : e.scope},
          {"kind", store::to_string(e.kind)},
          {"value", e.value},
          {"added", iso8601(e.added_ms)}};
}

}  // namespace mxguard::admin
