"""`vigint agent`: streams a customer's cameras to the Vigint server, unattended."""
