-- Coder's audit log storage on PostgreSQL, the query benchmark's anchor: the tables that
-- GetAuditLogsOffset and CountAuditLogs read, rebuilt from the description in
-- shared/reference/coder-audit-logs.md section 6 (Coder's coderd/database/dump.sql). Columns
-- the audit queries never read are left out of workspaces; every index those queries can use
-- is here or in coder-indexes.sql, and no other.
--
-- The benchmark runs this file, loads the tables with COPY, then runs coder-indexes.sql (an
-- index built after the load is the same index, built faster) and ANALYZE.

DROP TABLE IF EXISTS audit_logs, workspace_builds, workspaces, organizations, users;
DROP TYPE IF EXISTS resource_type, audit_action, build_reason, user_status, login_type;

CREATE TYPE resource_type AS ENUM (
    'organization',
    'template',
    'template_version',
    'user',
    'workspace',
    'git_ssh_key',
    'api_key',
    'group',
    'workspace_build',
    'license',
    'workspace_proxy',
    'convert_login',
    'health_settings',
    'oauth2_provider_app',
    'oauth2_provider_app_secret',
    'custom_role',
    'organization_member',
    'notifications_settings',
    'notification_template',
    'idp_sync_settings_organization',
    'idp_sync_settings_group',
    'idp_sync_settings_role',
    'workspace_agent',
    'workspace_app',
    'prebuilds_settings',
    'task',
    'ai_seat',
    'chat'
);

CREATE TYPE audit_action AS ENUM (
    'create',
    'write',
    'delete',
    'start',
    'stop',
    'login',
    'logout',
    'register',
    'request_password_reset',
    'connect',
    'disconnect',
    'open',
    'close'
);

CREATE TYPE build_reason AS ENUM (
    'initiator',
    'autostart',
    'autostop',
    'dormancy',
    'failedstop',
    'autodelete',
    'dashboard',
    'cli',
    'ssh_connection',
    'vscode_connection',
    'jetbrains_connection',
    'task_auto_pause',
    'task_manual_pause',
    'task_resume'
);

CREATE TYPE user_status AS ENUM (
    'active',
    'suspended',
    'dormant'
);

CREATE TYPE login_type AS ENUM (
    'password',
    'github',
    'oidc',
    'token',
    'none'
);

CREATE TABLE audit_logs (
    id uuid NOT NULL,
    "time" timestamp with time zone NOT NULL,
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    ip inet,
    user_agent character varying(256),
    resource_type resource_type NOT NULL,
    resource_id uuid NOT NULL,
    resource_target text NOT NULL,
    action audit_action NOT NULL,
    diff jsonb NOT NULL,
    status_code integer NOT NULL,
    additional_fields jsonb NOT NULL,
    request_id uuid NOT NULL,
    resource_icon text NOT NULL
);

CREATE TABLE users (
    id uuid NOT NULL,
    email text NOT NULL,
    username text NOT NULL,
    name text NOT NULL DEFAULT '',
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    last_seen_at timestamp without time zone NOT NULL DEFAULT '0001-01-01 00:00:00',
    status user_status NOT NULL DEFAULT 'active',
    login_type login_type NOT NULL DEFAULT 'password',
    rbac_roles text[] NOT NULL DEFAULT '{}',
    avatar_url text NOT NULL DEFAULT '',
    deleted boolean NOT NULL DEFAULT false,
    quiet_hours_schedule text NOT NULL DEFAULT ''
);

CREATE TABLE organizations (
    id uuid NOT NULL,
    name text NOT NULL,
    display_name text NOT NULL,
    icon text NOT NULL DEFAULT ''
);

CREATE TABLE workspaces (
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    name character varying(64) NOT NULL,
    deleted boolean NOT NULL DEFAULT false
);

CREATE TABLE workspace_builds (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    build_number integer NOT NULL,
    reason build_reason NOT NULL DEFAULT 'initiator'
);
