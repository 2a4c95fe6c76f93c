"""module_utils/shard_resources.py: which labels a janitor may take (expired_labels)."""

from ansible.module_utils.shard_resources import entry, expired_labels

LABEL = "shard-0123abcd4567"
OTHER = "shard-ffff00001111"
NOW = 1_800_000_000
HOUR = 3600
DAY = 24 * HOUR


def flavor(label, created):
    return entry(f"flavor-{label}-{created}", f"{label}-flavor", label, "description", created)


def server(label, created):
    return entry(f"server-{label}-{created}", f"{label}-server", label, "metadata", created)


def trait(label):
    name = "CUSTOM_" + label.upper().replace("-", "_")
    return entry(name, name, label, "name", None, providers=[])


def service(label, state, forced_down=False):
    return entry(
        f"service-{label}",
        label,
        label,
        "host",
        None,
        host=label,
        binary="nova-compute",
        state=state,
        status="enabled",
        forced_down=forced_down,
    )


def resources(**kinds):
    return {kind: list(found) for kind, found in kinds.items()}


def test_a_live_compute_keeps_its_label_whatever_its_age():
    found = resources(
        servers=[server(LABEL, NOW - 30 * DAY), server(OTHER, NOW - 30 * DAY)],
        compute_services=[service(LABEL, "up"), service(OTHER, "down")],
    )

    expired = expired_labels(found, 3 * HOUR, NOW)

    # The same age without a live service is expired: only the live compute keeps LABEL.
    assert list(expired) == [OTHER]


def test_a_live_compute_of_another_label_keeps_only_its_own():
    found = resources(
        flavors=[flavor(LABEL, NOW - DAY)],
        compute_services=[service(OTHER, "up")],
    )

    assert list(expired_labels(found, HOUR, NOW)) == [LABEL]


def test_nothing_dated_and_no_live_service_is_expired_with_the_reason():
    found = resources(
        traits=[trait(LABEL)],
        compute_services=[service(LABEL, "down")],
        resource_providers=[entry("uuid-1", LABEL, LABEL, "name", None, allocations=0)],
    )

    # Whatever the age limit: there is no age to compare.
    expired = expired_labels(found, 30 * DAY, NOW)

    assert expired == {LABEL: {"newest": None, "reason": "nothing dated and no live service"}}


def test_the_newest_resource_decides_the_age():
    found = resources(
        servers=[server(LABEL, NOW - 5 * HOUR)],
        # Created after the server: younger than the limit, so the run is not over.
        flavors=[flavor(LABEL, NOW - HOUR)],
        images=[entry("image-1", "img", LABEL, "property:shard_label", NOW - 10 * HOUR)],
    )

    assert expired_labels(found, 3 * HOUR, NOW) == {}
    assert expired_labels(found, HOUR, NOW) == {
        LABEL: {"newest": NOW - HOUR, "reason": f"newest resource {HOUR}s old"}
    }


def test_undated_resources_do_not_make_a_dated_label_old():
    found = resources(
        traits=[trait(LABEL)],
        flavors=[flavor(LABEL, NOW - 60)],
    )

    assert expired_labels(found, HOUR, NOW) == {}


def test_a_forced_down_service_is_not_live():
    # Whatever state the record reports, forced down is a compute someone gave up on.
    found = resources(
        flavors=[flavor(LABEL, NOW - DAY)],
        compute_services=[service(LABEL, "up", forced_down=True)],
    )

    expired = expired_labels(found, 3 * HOUR, NOW)

    assert expired == {LABEL: {"newest": NOW - DAY, "reason": f"newest resource {DAY}s old"}}


def test_a_forced_down_service_alone_is_debris():
    found = resources(compute_services=[service(LABEL, "up", forced_down=True)])

    assert expired_labels(found, HOUR, NOW) == {
        LABEL: {"newest": None, "reason": "nothing dated and no live service"}
    }


def test_nothing_found_nothing_expired():
    assert expired_labels(resources(servers=[], flavors=[]), 0, NOW) == {}


def test_a_glance_shard_s_label_is_kept_by_its_age_alone():
    """A glance shard has no compute service to report up: its images' age is its
    liveness signal. The janitor's minimum age (module_utils/shard_janitor_rules.py) is
    longer than any run lives, so an image that young may belong to a running job."""
    from ansible.module_utils.shard_janitor_rules import MINIMUM_AGE

    def image(label, created):
        return entry(f"image-{label}", f"{label}-image", label, "property", created)

    young = NOW - MINIMUM_AGE + 60
    old = NOW - MINIMUM_AGE - 60
    found = resources(images=[image(LABEL, young), image(OTHER, old)])

    assert list(expired_labels(found, MINIMUM_AGE, NOW)) == [OTHER]
