# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: projects, users, roles, services and endpoints of a cloud, in one call."""

DOCUMENTATION = r"""
---
module: shard_identity_catalog
short_description: Ensure keystone projects, users, role grants, services and endpoints exist
description:
  - Declares what an operator registers in keystone after bootstrap, and makes
    it so with one connection and one token.
  - The openstack.cloud collection has a module per object (project,
    identity_user, role_assignment, catalog_service, endpoint); registering a
    whole cloud with them costs a Python start and a token per object, which
    dominated the embedded cloud's bring-up. This module only adds what is
    missing; it never deletes, and never changes the password of an existing user.
options:
  projects:
    description: Projects to create in the C(default) domain.
    type: list
    elements: str
    default: []
  roles:
    description: Roles to create.
    type: list
    elements: str
    default: []
  users:
    description: Users to create in the C(default) domain, with the roles they get on their project.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description: Password, set when the user is created.
        type: str
        required: true
        no_log: true
      project:
        description: Default project, where the roles are granted.
        type: str
        required: true
      roles:
        description: Roles granted on I(project).
        type: list
        elements: str
        default: []
  services:
    description: Catalog services, each with one endpoint.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Service name.
        type: str
        required: true
      type:
        description: Service type (compute, image, ...).
        type: str
        required: true
      url:
        description: Endpoint URL.
        type: str
        required: true
      interface:
        description: Endpoint interface.
        type: str
        default: public
        choices: [public, internal, admin]
  region:
    description: Region of the endpoints.
    type: str
    default: RegionOne
  application_credentials:
    description:
      - Application credentials of the connection's own user (keystone lets a
        user manage only its own), on the connection's project.
      - Given alone (no I(projects), I(roles), I(users) or I(services)), the
        module reads nothing else of keystone, so that a user without admin
        (a service's user) can make its own.
      - One that exists with the I(id) given, the I(roles) and a I(secret) that
        authenticates is kept; any other of that name is replaced (its secret
        cannot be read back, so a lost or changed one is made again).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name, unique for the user.
        type: str
        required: true
      secret:
        description: Its secret (chosen by the caller, so that it can be stored before).
        type: str
        required: true
        no_log: true
      id:
        description: The id it had when last made, if known.
        type: str
        default: ""
      roles:
        description: Roles it carries (a subset of the user's on the project).
        type: list
        elements: str
        default: []
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Register the compute service and its user
  shard_identity_catalog:
    cloud: my-cloud-admin
    projects: [service]
    roles: [service]
    users:
      - {name: nova, password: "{{ nova_password }}", project: service, roles: [admin, service]}
    services:
      - {name: nova, type: compute, url: "http://127.0.0.1:8774/v2.1"}
  no_log: true
"""

RETURN = r"""
created:
  description: What was created, as C(kind:name) strings.
  returned: always
  type: list
  elements: str
  sample: ["project:service", "user:nova", "grant:nova/service/admin"]
application_credentials:
  description: Name to id of each application credential of I(application_credentials).
  returned: always
  type: dict
"""

from ansible.module_utils.shard_openstack import ShardModule


class IdentityCatalogModule(ShardModule):
    argument_spec = dict(
        projects=dict(type="list", elements="str", default=[]),
        roles=dict(type="list", elements="str", default=[]),
        users=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                password=dict(type="str", required=True, no_log=True),
                project=dict(type="str", required=True),
                roles=dict(type="list", elements="str", default=[]),
            ),
        ),
        services=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                type=dict(type="str", required=True),
                url=dict(type="str", required=True),
                interface=dict(
                    type="str", default="public", choices=["public", "internal", "admin"]
                ),
            ),
        ),
        region=dict(type="str", default="RegionOne"),
        application_credentials=dict(
            type="list",
            elements="dict",
            default=[],
            no_log=False,
            options=dict(
                name=dict(type="str", required=True),
                secret=dict(type="str", required=True, no_log=True),
                id=dict(type="str", default=""),
                roles=dict(type="list", elements="str", default=[]),
            ),
        ),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        created = []
        # Only what was asked: a user without admin (a service user making its own
        # application credential) may not list domains, roles or the catalog.
        if any(self.params[key] for key in ("projects", "roles", "users", "services")):
            self.catalog(created)
        ids = self.application_credentials(created)
        self.exit_json(changed=bool(created), created=created, application_credentials=ids)

    def catalog(self, created):
        identity = self.conn.identity
        domain = identity.find_domain("default", ignore_missing=False)

        projects = {p.name: p for p in identity.projects(domain_id=domain.id)}
        for name in self.params["projects"]:
            if name not in projects:
                created.append(f"project:{name}")
                if not self.check_mode:
                    projects[name] = identity.create_project(name=name, domain_id=domain.id)

        roles = {r.name: r for r in identity.roles()}
        wanted_roles = set(self.params["roles"])
        for user in self.params["users"]:
            wanted_roles.update(user["roles"])
        for name in sorted(wanted_roles):
            if name not in roles:
                created.append(f"role:{name}")
                if not self.check_mode:
                    roles[name] = identity.create_role(name=name)

        users = {u.name: u for u in identity.users(domain_id=domain.id)}
        for spec in self.params["users"]:
            user = users.get(spec["name"])
            project = projects.get(spec["project"])
            if user is None:
                created.append(f"user:{spec['name']}")
                if not self.check_mode:
                    user = identity.create_user(
                        name=spec["name"],
                        password=spec["password"],
                        domain_id=domain.id,
                        default_project_id=project.id if project else None,
                    )
            granted = set()
            if user is not None and project is not None:
                granted = {
                    a.role["id"]
                    for a in identity.role_assignments(user_id=user.id, scope_project_id=project.id)
                }
            for role_name in spec["roles"]:
                role = roles.get(role_name)
                if role is not None and role.id in granted:
                    continue
                created.append(f"grant:{spec['name']}/{spec['project']}/{role_name}")
                if not self.check_mode:
                    identity.assign_project_role_to_user(project, user, role)

        services = {(s.name, s.type): s for s in identity.services()}
        endpoints = list(identity.endpoints())
        region = self.params["region"]
        for spec in self.params["services"]:
            service = services.get((spec["name"], spec["type"]))
            if service is None:
                created.append(f"service:{spec['name']}")
                if not self.check_mode:
                    service = identity.create_service(name=spec["name"], type=spec["type"])
            exists = service is not None and any(
                e.service_id == service.id
                and e.interface == spec["interface"]
                and e.region_id == region
                and e.url == spec["url"]
                for e in endpoints
            )
            if not exists:
                created.append(f"endpoint:{spec['name']}/{spec['interface']}")
                if not self.check_mode:
                    identity.create_endpoint(
                        service_id=service.id,
                        interface=spec["interface"],
                        url=spec["url"],
                        region_id=region,
                    )

    def authenticates(self, credential_id, secret):
        """Whether keystone issues a token for the application credential."""
        from keystoneauth1 import exceptions, session
        from keystoneauth1.identity import v3

        auth = v3.ApplicationCredential(
            auth_url=self.conn.config.get_auth_args()["auth_url"],
            application_credential_id=credential_id,
            application_credential_secret=secret,
        )
        try:
            auth.get_token(session.Session(verify=self.conn.session.verify))
        except exceptions.Unauthorized:
            return False
        except exceptions.ClientException as exc:
            # Keystone unreachable, a 5xx: no answer about the credential. Re-creating
            # it then would change its id under the jobs that use it.
            self.fail_json(
                msg=f"keystone did not check the application credential: {type(exc).__name__}"
            )
        return True

    def application_credentials(self, created):
        identity = self.conn.identity
        ids = {}
        if not self.params["application_credentials"]:
            return ids
        user_id = self.conn.current_user_id
        existing = {c.name: c for c in identity.application_credentials(user=user_id)}
        for spec in self.params["application_credentials"]:
            found = existing.get(spec["name"])
            if (
                found is not None
                and found.id == spec["id"]
                and sorted(r["name"] for r in found.roles or []) == sorted(spec["roles"])
                and self.authenticates(found.id, spec["secret"])
            ):
                ids[spec["name"]] = found.id
                continue
            created.append(f"application_credential:{spec['name']}")
            if self.check_mode:
                ids[spec["name"]] = spec["id"]
                continue
            if found is not None:
                identity.delete_application_credential(user_id, found.id)
            made = identity.create_application_credential(
                user_id,
                spec["name"],
                secret=spec["secret"],
                roles=[{"name": role} for role in spec["roles"]],
                description="shard jobs' account (embedded cloud's handout)",
            )
            ids[spec["name"]] = made.id
        return ids


def main():
    IdentityCatalogModule()()


if __name__ == "__main__":
    main()
