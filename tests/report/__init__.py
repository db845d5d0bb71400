"""Tests of ``t1046-sensor report``: the incidents it reads, the pictures and the page, in a real Chromium."""
