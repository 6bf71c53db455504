{{/* Names and labels. */}}
{{- define "portcullis.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "portcullis.labels" -}}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Secret holding the OIDC client and the session signing secret. */}}
{{- define "portcullis.secretName" -}}
{{- .Values.portcullis.existingSecret | default (include "portcullis.fullname" .) -}}
{{- end -}}

{{/*
Settings that both layouts name: the authentication.yaml (seed 001) key wins when non-empty,
because seed 001 gives that file after values.yaml.
*/}}
{{- define "portcullis.clientId" -}}
{{- .Values.clientId | default .Values.secrets.oidc.oidc_client_id -}}
{{- end -}}
{{- define "portcullis.clientSecret" -}}
{{- .Values.secret | default .Values.secrets.oidc.oidc_client_secret -}}
{{- end -}}
{{- define "portcullis.discoveryUrl" -}}
{{- .Values.discoveryUri | default .Values.secrets.oidc.oidc_discovery_url -}}
{{- end -}}
{{- define "portcullis.scopes" -}}
{{- if .Values.scope -}}
{{- join "," .Values.scope -}}
{{- else -}}
{{- .Values.secrets.oidc.oidc_scopes -}}
{{- end -}}
{{- end -}}
{{- define "portcullis.redirectUrl" -}}
{{- if .Values.redirectUri -}}
{{- .Values.redirectUri -}}
{{- else -}}
{{- printf "https://%s/api/callback" (required "global.dnsRecord is required: the public host name, e.g. auth.example.com (the redirect URL is https://<dnsRecord>/api/callback unless redirectUri is set)" .Values.global.dnsRecord) -}}
{{- end -}}
{{- end -}}

{{/* "postgres" when a PostgreSQL URL is configured, else "sqlite". */}}
{{- define "portcullis.databaseKind" -}}
{{- $db := .Values.portcullis.database -}}
{{- if or $db.existingSecret (regexMatch "^postgres(ql)?://" ($db.url | default "")) -}}
postgres
{{- else -}}
sqlite
{{- end -}}
{{- end -}}

{{/* Where the SQLite file lives: the data volume, the only writable place besides /tmp. */}}
{{- define "portcullis.sqliteUrl" -}}
sqlite:///var/lib/portcullis/portcullis.db
{{- end -}}

{{/*
Role lists (seed 001: guest, powerUser, admin, platformAdmin at the top level, custom roles under
roles:) as the JSON object PORTCULLIS_ROLES takes. Empty when no role is configured.
*/}}
{{- define "portcullis.rolesJson" -}}
{{- $roles := dict -}}
{{- range $name, $groups := (.Values.roles | default dict) -}}
{{- if $groups }}{{- $_ := set $roles $name $groups -}}{{- end -}}
{{- end -}}
{{- range $name := list "guest" "powerUser" "admin" "platformAdmin" -}}
{{- $groups := index $.Values $name -}}
{{- if $groups }}{{- $_ := set $roles $name $groups -}}{{- end -}}
{{- end -}}
{{- if $roles }}{{ toJson $roles }}{{ end -}}
{{- end -}}

{{/*
Authorization-request parameters (seed 001 customParameters and access_type) as k=v,k2=v2.
A comma or "=" inside one would be read as a separator, so such values are refused here.
*/}}
{{- define "portcullis.customParameters" -}}
{{- $params := dict -}}
{{- range $k, $v := (.Values.customParameters | default dict) -}}
{{- $_ := set $params $k (toString $v) -}}
{{- end -}}
{{- if .Values.access_type -}}
{{- $_ := set $params "access_type" .Values.access_type -}}
{{- end -}}
{{- $pairs := list -}}
{{- range $k := keys $params | sortAlpha -}}
{{- $v := get $params $k -}}
{{- if or (contains "," $k) (contains "=" $k) (contains "," $v) (contains "=" $v) -}}
{{- fail (printf "customParameters %s: a name or value may not contain \",\" or \"=\"" $k) -}}
{{- end -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* seed 001's usernameField / groupsField, at the top level or under jwtClaims. */}}
{{- define "portcullis.usernameField" -}}
{{- .Values.usernameField | default (dig "usernameField" "" (.Values.jwtClaims | default dict)) -}}
{{- end -}}
{{- define "portcullis.groupsField" -}}
{{- .Values.groupsField | default (dig "groupsField" "" (.Values.jwtClaims | default dict)) -}}
{{- end -}}

{{/*
A plain environment variable of the container, left out when its value is empty (seed 000's
rule). Emitted already indented for the env list, so that a left-out one leaves no blank line.
*/}}
{{- define "portcullis.env" -}}
{{- $value := index . 1 | toString -}}
{{- if $value -}}
{{- printf "\n            - name: %s\n              value: %s" (index . 0) ($value | quote) -}}
{{- end -}}
{{- end -}}

{{/* A variable read from a Secret: never inlined as a value. */}}
{{- define "portcullis.secretEnv" -}}
{{- printf "\n            - name: %s\n              valueFrom:\n                secretKeyRef:\n                  name: %s\n                  key: %s" (index . 0) (index . 1) (index . 2) -}}
{{- end -}}

{{/*
The Secret holding the further identity providers' configuration file (key portcullis.yaml):
one of yours, or the chart's when portcullis.identityProviders lists any; empty: none.
*/}}
{{- define "portcullis.idpsSecret" -}}
{{- if .Values.portcullis.identityProvidersSecret -}}
{{- .Values.portcullis.identityProvidersSecret -}}
{{- else if .Values.portcullis.identityProviders -}}
{{- printf "%s-idps" (include "portcullis.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Refuse combinations that would not work, with one clear line each. */}}
{{- define "portcullis.validate" -}}
{{- if ne .Values.global.authType "OIDC" -}}
{{- fail (printf "global.authType must be OIDC (got %q)" .Values.global.authType) -}}
{{- end -}}
{{- if and (gt (int .Values.portcullis.replicas) 1) (eq (include "portcullis.databaseKind" .) "sqlite") -}}
{{- fail (printf "portcullis.replicas is %d but the database is SQLite, which one replica alone may use: set portcullis.database.url to a postgres:// URL (or portcullis.database.existingSecret), or set portcullis.replicas to 1" (int .Values.portcullis.replicas)) -}}
{{- end -}}
{{- if and .Values.portcullis.existingSecret .Values.portcullis.database.url -}}
{{- fail "portcullis.database.url is kept in the chart's Secret, which portcullis.existingSecret replaces: put the URL in a Secret of yours and name it in portcullis.database.existingSecret" -}}
{{- end -}}
{{- if not .Values.portcullis.existingSecret -}}
{{- if not (include "portcullis.clientId" .) -}}
{{- fail "secrets.oidc.oidc_client_id (or clientId) is required, or name a Secret in portcullis.existingSecret" -}}
{{- end -}}
{{- if and (not (include "portcullis.clientSecret" .)) (ne (.Values.portcullis.tokenEndpointAuthMethod | default "") "private_key_jwt") -}}
{{- fail "secrets.oidc.oidc_client_secret (or secret) is required, or name a Secret in portcullis.existingSecret" -}}
{{- end -}}
{{- if lt (len .Values.secrets.auth.jwt_signing_secret) 32 -}}
{{- fail "secrets.auth.jwt_signing_secret must be at least 32 characters (openssl rand -base64 32), or name a Secret in portcullis.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and (eq (.Values.portcullis.tokenEndpointAuthMethod | default "") "private_key_jwt") (not .Values.portcullis.clientKey.secretName) -}}
{{- fail "portcullis.tokenEndpointAuthMethod is private_key_jwt: name the Secret holding the client's PEM private key in portcullis.clientKey.secretName" -}}
{{- end -}}
{{- if not (or (include "portcullis.discoveryUrl" .) (and .Values.secrets.oidc.oidc_authorization_endpoint .Values.secrets.oidc.oidc_token_endpoint .Values.secrets.oidc.oidc_userinfo_endpoint)) -}}
{{- fail "set secrets.oidc.oidc_discovery_url (or discoveryUri), or all three of oidc_authorization_endpoint, oidc_token_endpoint and oidc_userinfo_endpoint" -}}
{{- end -}}
{{- end -}}
