# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: tempest's pre-provisioned accounts for a shard, and its second flavor."""

DOCUMENTATION = r"""
---
module: shard_tempest_accounts
short_description: Create or delete the projects, users and flavor tempest runs with on a shard
description:
  - With I(state=present), creates the run's tempest projects (C(<label>-tempest-<i>)),
    in each a user with the C(member) role and one with the C(reader) role (the
    personas of tempest's compute tests), gives those projects access to the
    shard's private flavor and to a second flavor of the same size and trait
    (C(<label>-flavor-alt), created here), and writes tempest's accounts file
    (mode 0600) for C(use_dynamic_credentials = False).
  - Projects, users and the flavor carry the label in their description, so
    that teardown and the janitor delete them, and everything their projects
    and users hold, by label; a kill mid-run leaves nothing they would miss.
  - Not tempest's dynamic credentials - the shard's flavors are private (nobody
    else may boot on the shard), and only projects created before the run can
    be given access to them.
  - Idempotent - an accounts file that already names this run's users is
    kept (passwords cannot be read back); otherwise every user's password is
    set anew and the file rewritten.
  - The account needs to create projects, users and role assignments, and
    flavors (admin by default).
  - With I(state=absent), deletes what the run's projects and users hold (servers,
    images, server groups, keypairs), then the users, the projects and the second
    flavor, as teardown does.
options:
  label:
    description: Label of the run (C(shard-<hex>)).
    type: str
    required: true
  projects:
    description: How many projects (each with one user per persona).
    type: int
    default: 4
  flavor:
    description: Name or id of the shard's flavor (tempest's C(flavor_ref)).
    type: str
  image:
    description: Name or id of the image tempest boots (its C(image_ref)); looked up only.
    type: str
  accounts_file:
    description: Where tempest's accounts file is written (I(state=present)).
    type: path
  state:
    description: Whether the accounts exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Accounts and flavors for tempest on the shard
  shard_tempest_accounts:
    cloud: my-cloud
    label: shard-3f2a9c01b7d4
    flavor: shard-3f2a9c01b7d4-flavor
    image: cirros
    accounts_file: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/tempest/accounts.yaml
  register: accounts

- name: Remove them (teardown does, by label, with everything they hold)
  shard_tempest_accounts:
    cloud: my-cloud
    label: shard-3f2a9c01b7d4
    state: absent
"""

RETURN = r"""
projects:
  description: The run's tempest projects (C(id), C(name)).
  returned: state=present
  type: list
  elements: dict
users:
  description: The run's tempest users (C(id), C(name), C(project), C(persona)); never a password.
  returned: state=present
  type: list
  elements: dict
flavor:
  description: The shard's flavor (C(id), C(name)).
  returned: state=present
  type: dict
alt_flavor:
  description: The second flavor (C(id), C(name)), of the same size, requiring the shard's trait.
  returned: state=present
  type: dict
image:
  description: The image (C(id), C(name)).
  returned: state=present
  type: dict
identity_uri:
  description: The identity v3 endpoint the account authenticated at (tempest's C(uri_v3)).
  returned: state=present
  type: str
region_name:
  description: The account's region (empty when its cloud names none).
  returned: state=present
  type: str
deleted:
  description: What I(state=absent) deleted.
  returned: state=absent
  type: list
  elements: str
"""

import os
import secrets
import time

from ansible.module_utils.shard_openstack import (
    ShardModule,
    description_for,
    label_of_description,
)
from ansible.module_utils.shard_resources import BY_PROJECT, delete_kind, find
from ansible.module_utils.shard_tempest import (
    PERSONAS,
    accounts_for,
    alt_flavor_name_for,
    projects_error,
)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with Ansible
    yaml = None


class TempestAccountsModule(ShardModule):
    argument_spec = dict(
        label=dict(type="str", required=True),
        projects=dict(type="int", default=4),
        flavor=dict(type="str"),
        image=dict(type="str"),
        accounts_file=dict(type="path"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_if=[("state", "present", ("flavor", "image", "accounts_file"))],
    )

    def run(self):
        self.label = self.require_label()
        error = projects_error(self.params["projects"])
        if error:
            self.fail_json(msg=error)
        if self.params["state"] == "absent":
            self.absent()
        else:
            self.present()

    # -- absent ---------------------------------------------------------------

    def absent(self):
        # Everything the accounts hold first: once a project or user is gone,
        # what it held carries no label anywhere.
        kinds = ["servers", "images", "server_groups", "keypairs", "users", "projects", "flavors"]
        found, _ = find(self.conn, kinds, lambda label: label == self.label)
        found["servers"] = [s for s in found["servers"] if s["source"] == BY_PROJECT]
        found["images"] = [i for i in found["images"] if i["source"] == BY_PROJECT]
        alt = alt_flavor_name_for(self.label)
        found["flavors"] = [f for f in found["flavors"] if f["name"] == alt]
        deadline = time.monotonic() + self.params["timeout"]
        deleted = []
        for kind in kinds:
            if self.check_mode:
                deleted += [f"{kind[:-1]}:{e['id']}" for e in found[kind]]
            elif found[kind]:
                deleted += delete_kind(self.conn, kind, found[kind], deadline)
        self.exit_json(changed=bool(deleted), deleted=deleted)

    # -- present --------------------------------------------------------------

    def present(self):
        identity, compute = self.conn.identity, self.conn.compute
        changed = False
        flavor = compute.find_flavor(self.params["flavor"], ignore_missing=True)
        if flavor is None:
            self.fail_json(
                msg=f"flavor {self.params['flavor']!r} not found: is the shard labelled?"
            )
        image = self.conn.image.find_image(self.params["image"], ignore_missing=True)
        if image is None:
            self.fail_json(msg=f"image {self.params['image']!r} not found")
        if image.visibility not in ("public", "community"):
            # tempest's accounts are other projects: they could not boot it.
            self.fail_json(
                msg=f"image {self.params['image']!r} is {image.visibility}: tempest's projects "
                "cannot boot it; hand out a public image (the credentials' image)"
            )
        own = identity.get_project(self.conn.current_project_id)
        domain = identity.get_domain(own.domain_id)
        roles = {}
        for persona in PERSONAS:
            roles[persona] = identity.find_role(persona, ignore_missing=True)
            if roles[persona] is None:
                self.fail_json(msg=f"role {persona!r} not found: tempest's personas need it")
        description = description_for(self.label)

        accounts = accounts_for(self.label, self.params["projects"])
        path = self.params["accounts_file"]
        existing = {
            user_name: self._own(
                identity.find_user(user_name, domain_id=domain.id, ignore_missing=True),
                "user",
                user_name,
            )
            for _, user_name, _ in accounts
        }
        # Passwords cannot be read back: the file is kept only if it names every user.
        kept = self._kept_accounts(path, accounts) and all(existing.values())
        if not kept and not self.check_mode and os.path.exists(path):
            # Passwords are about to change: a file naming the old ones must not
            # outlive a crash before it is written again (it would be kept).
            os.unlink(path)
        projects, users = {}, []
        for project_name, user_name, persona in accounts:
            project = projects.get(project_name) or self._own(
                identity.find_project(project_name, domain_id=domain.id, ignore_missing=True),
                "project",
                project_name,
            )
            if project is None:
                changed = True
                project = (
                    None
                    if self.check_mode
                    else identity.create_project(
                        name=project_name, domain_id=domain.id, description=description
                    )
                )
            projects[project_name] = project
            user = existing[user_name]
            password = None if kept else secrets.token_urlsafe(24)
            if user is None:
                changed = True
                if not self.check_mode:
                    user = identity.create_user(
                        name=user_name,
                        password=password,
                        domain_id=domain.id,
                        default_project_id=project.id,
                        description=description,
                    )
            elif not kept:
                changed = True
                if not self.check_mode:
                    identity.update_user(user, password=password)
            role = roles[persona]
            if (
                user is not None
                and project is not None
                and not identity.validate_user_has_project_role(project, user, role)
            ):
                changed = True
                if not self.check_mode:
                    identity.assign_project_role_to_user(project, user, role)
            users.append(
                dict(
                    id=getattr(user, "id", None),
                    name=user_name,
                    project=project_name,
                    persona=persona,
                    password=password,
                )
            )

        alt, alt_changed = self._alt_flavor(flavor)
        changed = changed or alt_changed
        for each in (flavor, alt):
            if each is None:
                continue
            allowed = {a["tenant_id"] for a in compute.get_flavor_access(each)}
            for project in projects.values():
                # (In check mode a project still to be created is None.)
                if project is not None and project.id not in allowed:
                    changed = True
                    if not self.check_mode:
                        compute.flavor_add_tenant_access(each, project.id)

        if not kept:
            changed = True
            if not self.check_mode:
                self._write_accounts(path, users, domain.name)
        for user in users:
            user.pop("password")
        self.exit_json(
            changed=changed,
            projects=[dict(id=getattr(p, "id", None), name=name) for name, p in projects.items()],
            users=users,
            flavor=dict(id=flavor.id, name=flavor.name),
            alt_flavor=dict(id=getattr(alt, "id", None), name=alt_flavor_name_for(self.label)),
            image=dict(id=image.id, name=image.name),
            # The versioned endpoint (keystoneauth's discovery): tempest's uri_v3.
            identity_uri=self.conn.identity.get_endpoint_data().url,
            region_name=self.conn.config.region_name or "",
        )

    def _own(self, found, kind, name):
        """A project or user of this name, if it is this run's; fail if someone else's."""
        if found is not None and label_of_description(found.description) != self.label:
            self.fail_json(
                msg=f"{kind} {name} ({found.id}) exists but does not carry label "
                f"{self.label}: it is not this run's, and is left alone"
            )
        return found

    def _alt_flavor(self, flavor):
        """The second flavor, private, of the shard flavor's size and specs: (flavor, changed)."""
        compute = self.conn.compute
        name = alt_flavor_name_for(self.label)
        alt = compute.find_flavor(name, ignore_missing=True, get_extra_specs=True)
        alt = self._own(alt, "flavor", name)
        specs = compute.fetch_flavor_extra_specs(flavor).extra_specs or {}
        if alt is not None:
            # A run killed before the specs were set left the flavor without the trait.
            missing = {k: v for k, v in specs.items() if (alt.extra_specs or {}).get(k) != v}
            if missing and not self.check_mode:
                compute.create_flavor_extra_specs(alt, missing)
            return alt, bool(missing)
        if self.check_mode:
            return None, True
        alt = compute.create_flavor(
            name=name,
            ram=flavor.ram,
            vcpus=flavor.vcpus,
            disk=flavor.disk,
            is_public=False,
            description=description_for(self.label),
        )
        compute.flavor_add_tenant_access(alt, self.conn.current_project_id)
        if specs:
            compute.create_flavor_extra_specs(alt, specs)
        return alt, True

    def _kept_accounts(self, path, accounts):
        """Whether the accounts file already holds exactly these users (then it is kept)."""
        try:
            with open(path) as f:
                written = yaml.safe_load(f) or []
        except (OSError, yaml.YAMLError):
            return False
        if not isinstance(written, list) or not all(isinstance(a, dict) for a in written):
            return False
        return sorted(a.get("username", "") for a in written) == sorted(u for _, u, _ in accounts)

    def _write_accounts(self, path, users, domain_name):
        entries = [
            dict(
                username=u["name"],
                project_name=u["project"],
                password=u["password"],
                user_domain_name=domain_name,
                project_domain_name=domain_name,
                roles=[u["persona"]],
            )
            for u in users
        ]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # 0600 before any byte is written: the file holds passwords.
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(entries, f)
        os.replace(path + ".tmp", path)


def main():
    TempestAccountsModule()()


if __name__ == "__main__":
    main()
