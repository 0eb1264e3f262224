"""The web server: logins and roles, dashboard and map, search, requests, evidence pages."""
