#!/bin/sh
# The page mod_auth_openidc protects: the user Apache authenticated and the claims it passed on
# (from the ID token and userinfo), one NAME=value a line. Tokens (OIDC_access_token) are left out.
printf 'Content-Type: text/plain; charset=utf-8\n\n'
env | grep -E '^(REMOTE_USER|AUTH_TYPE|OIDC_CLAIM_[A-Za-z0-9_]+)=' | sort
