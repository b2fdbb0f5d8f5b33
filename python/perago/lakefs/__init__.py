"""Everything perago does against lakeFS: the control-plane client, the workspace runtime
(download, stage, publish, clean up), the fenced publisher, object paths and staging-branch GC."""
