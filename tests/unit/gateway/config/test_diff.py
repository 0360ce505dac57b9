from gateway.config.diff import diff_configs

RUNNING = {
    "version": 1,
    "providers": {
        "hub88": {"adapter": "hub88", "base_url": "http://a", "credentials": {"x_env": "***"}},
        "stripe": {"adapter": "stripe", "base_url": "http://s", "timeout_ms": 2000},
    },
    "routes": {
        "games.list": {"providers": ["hub88"]},
        "payments.create": {"providers": ["stripe"]},
    },
}


def test_no_changes():
    assert diff_configs(RUNNING, RUNNING) == []


def test_added_removed_and_changed_providers_and_routes():
    candidate = {
        "version": 1,
        "log_level": "debug",
        "providers": {
            "hub88": {"adapter": "hub88", "base_url": "http://b", "credentials": {"x_env": "***"}},
            "adyen": {"adapter": "adyen", "base_url": "http://y"},
        },
        "routes": {
            "games.list": {"providers": ["hub88"], "cache": {"ttl_s": 60}},
            "payments.create": {"providers": ["adyen"]},
            "games.get": {"providers": ["hub88"]},
        },
    }
    assert diff_configs(RUNNING, candidate) == [
        "+ provider adyen",
        "- provider stripe",
        "~ provider hub88: base_url",
        "+ route games.get",
        "~ route games.list: cache",
        "~ route payments.create: providers",
        "~ settings: log_level",
    ]


def test_nested_changes_are_named_by_path():
    candidate = {**RUNNING, "providers": {**RUNNING["providers"]}}
    candidate["providers"]["stripe"] = {
        **RUNNING["providers"]["stripe"],
        "timeout_ms": 900,
        "breaker": {"failure_threshold": 3},
    }
    assert diff_configs(RUNNING, candidate) == ["~ provider stripe: breaker, timeout_ms"]
