"""Git: the port promoter uses to read and write the GitOps repository, and its adapter."""
