<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" styleCategories="Symbology">
  <renderer-v2 type="RuleRenderer" forceraster="0" enableorderby="0" symbollevels="0" referencescale="-1">
    <rules key="{00000000-0000-4000-8000-000000000000}">
      <rule key="{00000000-0000-4000-8000-000000000001}" symbol="0" label="Not analysed (&lt; 50 %)" filter='"analysed" &lt; 0.5'/>
      <rule key="{00000000-0000-4000-8000-000000000002}" symbol="1" label="No new fence" filter='coalesce("new_fence_m", 0) = 0'/>
      <rule key="{00000000-0000-4000-8000-000000000003}" symbol="2" label="New fence &lt; 250 m" filter='"new_fence_m" &gt; 0 AND "new_fence_m" &lt; 250'/>
      <rule key="{00000000-0000-4000-8000-000000000004}" symbol="3" label="New fence 250–750 m" filter='"new_fence_m" &gt;= 250 AND "new_fence_m" &lt; 750'/>
      <rule key="{00000000-0000-4000-8000-000000000005}" symbol="4" label="New fence ≥ 750 m" filter='"new_fence_m" &gt;= 750'/>
    </rules>
    <symbols>
    <symbol type="line" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="170,170,170,255"/>
          <Option type="QString" name="line_style" value="dash"/>
          <Option type="QString" name="line_width" value="1.2"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="1" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="120,170,120,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="1.6"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="2" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="254,204,92,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="2.4"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="3" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="253,141,60,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="2.8"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="4" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="189,0,38,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="3.2"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    </symbols>
  </renderer-v2>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerGeometryType>1</layerGeometryType>
</qgis>
